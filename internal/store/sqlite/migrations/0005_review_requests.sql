-- Open review requests, one row per reviewer of an open pull request who
-- has neither approved nor requested changes yet (store.ReviewLoad's
-- count). UpsertPR rewrites a pull request's rows in the transaction that
-- writes its record, so the review load is one aggregate over this narrow
-- table instead of decoding every open pull request record.
CREATE TABLE pr_review_requests (
    repository TEXT    NOT NULL,
    id         INTEGER NOT NULL,
    account_id TEXT    NOT NULL
);
CREATE INDEX pr_review_requests_pr ON pr_review_requests (repository, id);

INSERT INTO pr_review_requests (repository, id, account_id)
SELECT p.repository, p.id, r.value
FROM pull_requests p, json_each(p.reviewers) r
WHERE p.state = 'OPEN' AND p.reviewers IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM json_each(p.approvals) a
                  WHERE json_extract(a.value, '$.account_id') = r.value);
