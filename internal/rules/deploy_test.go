package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

func TestDeployPolicy(t *testing.T) {
	org := testOrg()
	tests := []struct {
		name     string
		repo     string
		env      string
		authors  []string
		wantErr  error
		gated    bool
		eligible []string
		excluded []string
		notes    []string
		reason   string // substring
	}{
		{name: "unknown repository", repo: "reloadly/nope", env: "production", wantErr: ErrUnknownRepository},
		{
			name:   "environment not listed",
			repo:   "reloadly/checkout-api",
			env:    "staging",
			reason: "no deploy-approval rule lists environment staging: approved at once",
		},
		{
			name:     "author holding the role is excluded, away owner still eligible",
			repo:     "reloadly/checkout-web",
			env:      "production",
			authors:  []string{accAmara, accLena},
			gated:    true,
			eligible: []string{accOmar},
			excluded: []string{"Amara Okafor authored a pull request that brought this commit"},
			notes:    []string{"Omar Haddad is away until 20 Jun (their approval still counts)"},
			reason:   `product-owner/deploy-approval (Product owner: "Performs and oversees production deployments"): deployments of team checkout to production need an approval from Product owner of team checkout who did not author the change`,
		},
		{
			name:     "environment matched case-insensitively",
			repo:     "RELOADLY/checkout-api",
			env:      "Sandbox",
			gated:    true,
			eligible: []string{accAmara, accOmar},
		},
		{
			name:   "team with nobody holding the role",
			repo:   "reloadly/payments-api",
			env:    "production",
			gated:  true,
			notes:  []string{"nobody can approve: no Product owner of team payments who did not author the change; only a break-glass override can release it"},
			reason: "deployments of team payments to production",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := DeployPolicy(org, tc.repo, tc.env, tc.authors, june)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantEq(t, "gated", res.Gated, tc.gated)
			var got []string
			for _, p := range res.Eligible {
				got = append(got, p.AccountID)
				if containsString(tc.authors, p.AccountID) {
					t.Errorf("author %s is eligible", p.AccountID)
				}
			}
			wantEq(t, "eligible", got, tc.eligible)
			wantEq(t, "excluded", res.Excluded, tc.excluded)
			for _, n := range tc.notes {
				if !containsString(res.Notes, n) {
					t.Errorf("notes %q lack %q", res.Notes, n)
				}
			}
			wantContains(t, "reason", res.Reason, tc.reason)
		})
	}
}

func TestCanApproveDeploy(t *testing.T) {
	org := testOrg()
	gated, err := DeployPolicy(org, "reloadly/checkout-api", "production", []string{accAmara, accLena}, june)
	if err != nil {
		t.Fatal(err)
	}
	open, err := DeployPolicy(org, "reloadly/checkout-api", "staging", []string{accAmara}, june)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		res    DeployResult
		acc    string
		ok     bool
		reason string
	}{
		{"eligible owner", gated, accOmar, true, "Omar Haddad may approve: Product owner of team checkout, authored none of the changes"},
		{"author holding the role", gated, accAmara, false, "Amara Okafor authored a pull request that brought this commit"},
		{"author without the role", gated, accLena, false, "authored a pull request that brought this commit and does not hold product-owner"},
		{"someone without the role", gated, accMei, false, "does not hold product-owner for team checkout"},
		{"no account id", gated, "", false, "without an account id"},
		{"not gated", open, accAmara, true, "approved at once"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := CanApproveDeploy(tc.res, tc.acc)
			if ok != tc.ok || !strings.Contains(why, tc.reason) {
				t.Errorf("CanApproveDeploy(%s) = %v, %q; want %v, containing %q", tc.acc, ok, why, tc.ok, tc.reason)
			}
		})
	}
}

func TestEnvironments(t *testing.T) {
	b := newOrgBuilder()
	po := b.role("product-owner", "Product owner", roles.ScopeTeam)
	b.enforce(po, "Performs production deployments", &roles.Rule{Kind: roles.KindDeployApproval, Environments: []string{"production"}})
	cto := b.role("cto", "CTO", roles.ScopeOrganization)
	b.enforce(cto, "Owns the process", &roles.Rule{Kind: roles.KindDeployApproval, Environments: []string{"dr", "production"}, Teams: []string{"core"}})
	b.team("core", "ws/core")
	b.team("web", "ws/web")
	org := b.build()
	wantEq(t, "core", Environments(org, "core"), []string{"production", "dr"})
	wantEq(t, "web", Environments(org, "web"), []string{"production"})

	// The first rule listing the environment decides; the other is noted.
	res, err := DeployPolicy(org, "ws/core", "production", nil, june)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "rule", res.RuleID, "product-owner/deploy-approval")
	wantEq(t, "notes", res.Notes[0], "rule cto/deploy-approval also lists production: the first rule, product-owner/deploy-approval, decides")
	res, err = DeployPolicy(org, "ws/core", "dr", nil, june)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "dr rule", res.RuleID, "cto/deploy-approval")
}

func TestDeployPolicyOfSaysWhatEachAuthorAuthored(t *testing.T) {
	org := testOrg()
	res, err := DeployPolicyOf(org, "reloadly/checkout-api", "production", []Authorship{
		{AccountID: accLena, What: "authored pull request #7"},
		{AccountID: accAmara, What: "authored commit 1a2b3c4d5e6f of pull request #7"},
		{AccountID: accAmara, What: "authored pull request #8"}, // the first reason stays
		{AccountID: "", What: "ignored"},
	}, june)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "authors", res.Authors, []string{accLena, accAmara})
	wantEq(t, "excluded", res.Excluded, []string{"Amara Okafor authored commit 1a2b3c4d5e6f of pull request #7"})
	if ok, why := CanApproveDeploy(res, accAmara); ok || !strings.Contains(why, "authored commit 1a2b3c4d5e6f of pull request #7") {
		t.Errorf("a commit author may approve: %v %q", ok, why)
	}
	if ok, why := CanApproveDeploy(res, accLena); ok || !strings.Contains(why, "authored pull request #7 and does not hold product-owner") {
		t.Errorf("the pull request author: %v %q", ok, why)
	}
	if ok, _ := CanApproveDeploy(res, accOmar); !ok {
		t.Error("the product owner who authored nothing may not approve")
	}
}

func TestDeployInvalidateOnPush(t *testing.T) {
	parse := func(settings string) bool {
		t.Helper()
		org, err := roles.Parse("roles.yaml", []byte(`version: 1
organization: T
roles:
  product-owner:
    title: Product owner
    responsibilities:
      - text: Deploys
        enforce:
          deploy-approval: `+settings+`
teams:
  core: {repositories: [ws/core]}
people:
  - {id: po, name: P O, account_id: acc-po, roles: [product-owner], teams: [core]}
`))
		if err != nil {
			t.Fatalf("%s: %v", settings, err)
		}
		res, err := DeployPolicy(org, "ws/core", "production", nil, june)
		if err != nil {
			t.Fatal(err)
		}
		return res.InvalidateOnPush
	}
	if !parse(`{environments: [production]}`) {
		t.Error("deploy-approval does not invalidate approvals on push by default")
	}
	if parse(`{environments: [production], invalidate_on_push: false}`) {
		t.Error("invalidate_on_push: false is not honoured")
	}
	if _, err := roles.Parse("roles.yaml", []byte(`version: 1
organization: T
roles:
  po:
    title: PO
    responsibilities:
      - text: Deploys
        enforce:
          deploy-approval: {environments: [production], invalidate_on_push: "yes"}
teams: {}
people: []
`)); err == nil || !strings.Contains(err.Error(), "invalidate_on_push must be true or false") {
		t.Errorf("a non-boolean invalidate_on_push: %v", err)
	}
}

func TestDeployStatusKey(t *testing.T) {
	wantEq(t, "short", DeployStatusKey("Production"), "rolekeeper-deploy-production")
	wantEq(t, "22 characters fit", DeployStatusKey(strings.Repeat("e", 22)), "rolekeeper-deploy-"+strings.Repeat("e", 22))
	long := "production-eu-west-1-blue"   // 25 characters
	other := "production-eu-west-1-green" // same first 13 characters
	k := DeployStatusKey(long)
	if len(k) != 40 || !strings.HasPrefix(k, "rolekeeper-deploy-production-e") || k != DeployStatusKey(strings.ToUpper(long)) {
		t.Errorf("DeployStatusKey(%q) = %q (%d characters): not a stable 40-character key with a readable prefix", long, k, len(k))
	}
	if k == DeployStatusKey(other) {
		t.Errorf("%q and %q share the key %q", long, other, k)
	}
	for n := 1; n <= 64; n++ {
		if k := DeployStatusKey(strings.Repeat("x", n)); len(k) > 40 {
			t.Errorf("environment of %d characters: key %q is %d characters", n, k, len(k))
		}
	}
}

func TestApprovalBranchWhy(t *testing.T) {
	main := DeployResult{}
	release := DeployResult{Branches: []string{"main", "release/*"}}
	for _, tc := range []struct {
		name       string
		r          DeployResult
		dest, repo string // repo: the repository's main branch
		want       string // "" or a fragment of the reason
	}{
		{"into the main branch", main, "main", "main", ""},
		{"into master, the main branch", main, "master", "master", ""},
		{"into a side branch", main, "mei/side", "main", "pull request #7 targets mei/side, not main, the main branch"},
		{"no destination", main, "", "main", "targets no branch"},
		{"into a declared release branch", release, "release/1", "", ""},
		{"into main, declared", release, "main", "", ""},
		{"into a branch not declared", release, "hotfix/1", "", "none of the deploy-approval rule's branches (main, release/*)"},
		{"nested below a declared glob", release, "release/1/x", "", "none of the deploy-approval rule's branches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.ApprovalBranchWhy(7, tc.dest, tc.repo)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("ApprovalBranchWhy(%q, main %q) = %q, want %q", tc.dest, tc.repo, got, tc.want)
			}
		})
	}
	// The policy carries the rule's branches.
	org := prKindsOrg(t)
	for _, r := range org.Rules {
		if r.Kind == roles.KindDeployApproval {
			r.Branches = []string{"release/*"}
		}
	}
	dr, err := DeployPolicyOf(org, "acme/pay", "Production", nil, time.Now())
	if err != nil || !dr.Gated || len(dr.Branches) != 1 || dr.Branches[0] != "release/*" {
		t.Errorf("policy %+v %v", dr, err)
	}
}
