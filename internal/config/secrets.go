package config

import (
	"encoding/json"
	"strings"

	"go.uber.org/zap/zapcore"
)

// Environment variables holding secrets (CONTRACT.md). Secrets are never read
// from the configuration file and never logged.
const (
	EnvBitbucketUsername      = "ROLEKEEPER_BITBUCKET_USERNAME"
	EnvBitbucketToken         = "ROLEKEEPER_BITBUCKET_TOKEN"
	EnvBitbucketAccessToken   = "ROLEKEEPER_BITBUCKET_ACCESS_TOKEN"
	EnvBitbucketWebhookSecret = "ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET"
	EnvJiraEmail              = "ROLEKEEPER_JIRA_EMAIL"
	EnvJiraToken              = "ROLEKEEPER_JIRA_TOKEN"
	EnvJiraWebhookSecret      = "ROLEKEEPER_JIRA_WEBHOOK_SECRET"
	// EnvAPIToken is the pipelines' token: it may create and read
	// deployment gates, nothing else.
	EnvAPIToken = "ROLEKEEPER_API_TOKEN"
	// EnvAdminToken opens the rest of /api/v1: deliveries, redrive,
	// decisions, reports, break-glass through the API.
	EnvAdminToken = "ROLEKEEPER_ADMIN_TOKEN"
	// EnvStoreDSN overrides store.dsn, so that a database password can stay
	// out of the file (a Kubernetes secret, say).
	EnvStoreDSN = "ROLEKEEPER_STORE_DSN"
)

// Secrets are the credentials read from the environment. Its String and
// GoString methods redact every value, so that printing a Secrets (or a
// struct holding one) shows which are set and nothing more.
type Secrets struct {
	BitbucketUsername    string
	BitbucketToken       string
	BitbucketAccessToken string
	// BitbucketWebhookSecrets holds one secret, or two while one rotates:
	// the variable may hold "new,old"; a delivery signed with either passes.
	BitbucketWebhookSecrets []string
	JiraEmail               string
	JiraToken               string
	JiraWebhookSecrets      []string // as BitbucketWebhookSecrets
	APIToken                string   // ROLEKEEPER_API_TOKEN: gates only
	AdminToken              string   // ROLEKEEPER_ADMIN_TOKEN: all of /api/v1
	StoreDSN                string   // overrides store.dsn when set
}

// LoadSecrets reads the secrets through getenv (os.Getenv in main).
func LoadSecrets(getenv func(string) string) Secrets {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	return Secrets{
		BitbucketUsername:       get(EnvBitbucketUsername),
		BitbucketToken:          get(EnvBitbucketToken),
		BitbucketAccessToken:    get(EnvBitbucketAccessToken),
		BitbucketWebhookSecrets: splitSecrets(getenv(EnvBitbucketWebhookSecret)),
		JiraEmail:               get(EnvJiraEmail),
		JiraToken:               get(EnvJiraToken),
		JiraWebhookSecrets:      splitSecrets(getenv(EnvJiraWebhookSecret)),
		APIToken:                get(EnvAPIToken),
		AdminToken:              get(EnvAdminToken),
		StoreDSN:                get(EnvStoreDSN),
	}
}

// splitSecrets splits "new,old" into its secrets, dropping empty ones.
func splitSecrets(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// HasBitbucketAPI reports whether Bitbucket API credentials are set (basic
// auth or an access token). Without them rolekeeper runs Bitbucket in
// dry-run: it may read, it never writes.
func (s Secrets) HasBitbucketAPI() bool {
	return s.BitbucketAccessToken != "" || (s.BitbucketUsername != "" && s.BitbucketToken != "")
}

// HasJiraAPI reports whether Jira API credentials are set.
func (s Secrets) HasJiraAPI() bool { return s.JiraEmail != "" && s.JiraToken != "" }

// String lists which secrets are set, never their values.
func (s Secrets) String() string {
	var set []string
	add := func(name string, ok bool) {
		if ok {
			set = append(set, name+"=<redacted>")
		}
	}
	add(EnvBitbucketUsername, s.BitbucketUsername != "")
	add(EnvBitbucketToken, s.BitbucketToken != "")
	add(EnvBitbucketAccessToken, s.BitbucketAccessToken != "")
	add(EnvBitbucketWebhookSecret, len(s.BitbucketWebhookSecrets) > 0)
	add(EnvJiraEmail, s.JiraEmail != "")
	add(EnvJiraToken, s.JiraToken != "")
	add(EnvJiraWebhookSecret, len(s.JiraWebhookSecrets) > 0)
	add(EnvAPIToken, s.APIToken != "")
	add(EnvAdminToken, s.AdminToken != "")
	add(EnvStoreDSN, s.StoreDSN != "")
	return "Secrets{" + strings.Join(set, " ") + "}"
}

// GoString redacts as String does (for %#v).
func (s Secrets) GoString() string { return s.String() }

// MarshalJSON redacts as String does, so that encoding a struct holding
// Secrets cannot leak them.
func (s Secrets) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalLogObject makes zap.Any and zap.Object log which secrets are set,
// not their values (zap would otherwise encode the fields by reflection).
func (s Secrets) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddBool("bitbucket_api", s.HasBitbucketAPI())
	enc.AddInt("bitbucket_webhook_secrets", len(s.BitbucketWebhookSecrets))
	enc.AddBool("jira_api", s.HasJiraAPI())
	enc.AddInt("jira_webhook_secrets", len(s.JiraWebhookSecrets))
	enc.AddBool("api_token", s.APIToken != "")
	enc.AddBool("admin_token", s.AdminToken != "")
	enc.AddBool("store_dsn", s.StoreDSN != "")
	return nil
}
