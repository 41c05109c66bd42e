-- Open review requests, one row per reviewer of an open pull request who
-- has neither approved nor requested changes yet (store.ReviewLoad's
-- count). UpsertPR rewrites a pull request's rows in the transaction that
-- writes its record, so the review load is one aggregate over this narrow
-- table instead of decoding every open pull request record.
CREATE TABLE pr_review_requests (
    repository text    COLLATE "C" NOT NULL,
    id         integer NOT NULL,
    account_id text    NOT NULL
);
CREATE INDEX pr_review_requests_pr ON pr_review_requests (repository, id);

INSERT INTO pr_review_requests (repository, id, account_id)
SELECT p.repository, p.id, r.account_id
FROM pull_requests p
CROSS JOIN LATERAL jsonb_array_elements_text(p.reviewers::jsonb) AS r(account_id)
WHERE p.state = 'OPEN'
  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(p.approvals, '[]')::jsonb) a
                  WHERE a->>'account_id' = r.account_id);
