package doctor

import (
	"net"
	"net/url"
	"strings"

	"github.com/reloadly/rolekeeper/internal/config"
)

// minSecretLen is the length below which a secret is called weak
// (openssl rand -hex 32 gives 64).
const minSecretLen = 16

// checkWebhookSecrets says what each webhook endpoint will do with a
// delivery.
func (d *doctor) checkWebhookSecrets() {
	d.webhookSecret(checkBitbucketHook, "Bitbucket", "/webhooks/bitbucket", config.EnvBitbucketWebhookSecret, d.secrets.BitbucketWebhookSecrets)
	if d.cfg.Jira.BaseURL == "" {
		d.r.add(OK, checkJiraHook, "not needed (Jira is off)")
		return
	}
	d.webhookSecret(checkJiraHook, "Jira", "/webhooks/jira", config.EnvJiraWebhookSecret, d.secrets.JiraWebhookSecrets)
}

func (d *doctor) webhookSecret(check, vendor, path, env string, secrets []string) {
	if len(secrets) == 0 {
		if d.cfg.Webhooks.AllowUnsigned {
			d.r.add(Warn, check, "%s is not set and webhooks.allow_unsigned is true: POST %s accepts unsigned deliveries from anyone who can reach it. Local demos only",
				env, path)
			return
		}
		d.r.add(Fail, check, "%s is not set: POST %s answers 503 to every delivery. Generate a secret (openssl rand -hex 32), set it on the %s webhook and in %s",
			env, path, vendor, env)
		return
	}
	for _, s := range secrets {
		if len(s) < minSecretLen {
			d.r.add(Warn, check, "%s is shorter than %d characters: use a long random secret (openssl rand -hex 32)", env, minSecretLen)
			return
		}
	}
	if len(secrets) > 1 {
		d.r.add(OK, check, "%s holds %d secrets (a rotation): deliveries signed with either pass; drop the old one once the %s webhook uses the new",
			env, len(secrets), vendor)
		return
	}
	d.r.add(OK, check, "%s is set: deliveries to POST %s are checked against it", env, path)
}

// checkPublicURL judges public_url, which the webhooks and every link
// posted upstream are built on. Whether Atlassian's cloud can reach it
// cannot be told from here: the line says so.
func (d *doctor) checkPublicURL() {
	raw := strings.TrimRight(d.cfg.PublicURL, "/")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		d.r.add(Fail, checkPublicURL, "public_url %q is not a URL: set it to the HTTPS address Bitbucket and Jira reach rolekeeper at", d.cfg.PublicURL)
		return
	}
	switch host := u.Hostname(); {
	case internalHost(host):
		d.r.add(Warn, checkPublicURL, "%s is not reachable from Bitbucket Cloud or Jira Cloud (%s is a loopback, private or in-cluster address): webhooks will not arrive and links in comments will not open. Set public_url to the HTTPS address of your ingress or load balancer",
			raw, host)
	case u.Scheme != "https":
		d.r.add(Warn, checkPublicURL, "%s: https expected; Bitbucket verifies certificates and deliveries carry your code's metadata. Terminate TLS in front of rolekeeper and set public_url to https://…", raw)
	default:
		d.r.add(OK, checkPublicURL, "%s (https). It must be reachable from Atlassian's cloud, which doctor cannot test from here: after configuring the webhooks, Bitbucket's \"View requests\" shows whether deliveries arrive", raw)
	}
	urls := "Bitbucket " + raw + "/webhooks/bitbucket"
	if d.cfg.Jira.BaseURL != "" {
		urls += ", Jira " + raw + "/webhooks/jira"
	}
	d.r.add(OK, checkWebhookURLs, "configure %s (docs/setup.md lists the events)", urls)
}

// internalHost reports whether host cannot be reached from the internet.
func internalHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") ||
		strings.HasSuffix(h, ".internal") || strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc.cluster.local") ||
		!strings.Contains(h, ".") && net.ParseIP(h) == nil {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast())
}

// checkAPIToken says whether the pipelines can ask for deployment gates
// (ROLEKEEPER_API_TOKEN) and whether the rest of /api/v1 is open to an
// admin (ROLEKEEPER_ADMIN_TOKEN). It says whether each is set, never what
// it holds.
func (d *doctor) checkAPIToken() {
	api, admin := d.secrets.APIToken, d.secrets.AdminToken
	switch {
	case api == "":
		d.r.add(Warn, checkAPIToken, "%s is not set: pipelines cannot use `rolekeeper gate` (POST /api/v1/gates answers 401 to them). Set it (openssl rand -hex 32) as a secured Pipelines variable",
			config.EnvAPIToken)
	case len(api) < minSecretLen:
		d.r.add(Warn, checkAPIToken, "%s is shorter than %d characters: use a long random token (openssl rand -hex 32)", config.EnvAPIToken, minSecretLen)
	default:
		d.r.add(OK, checkAPIToken, "%s is set: pipelines use it for `rolekeeper gate` (create and read gates, nothing else)", config.EnvAPIToken)
	}
	switch {
	case admin == "":
		d.r.add(Warn, checkAdminToken, "%s is not set: the rest of /api/v1 (deliveries, redrive, decisions, reports, break-glass through the API) answers 401, and `rolekeeper deliveries --server` cannot be used. Set it (openssl rand -hex 32) and keep it out of pipelines",
			config.EnvAdminToken)
	case admin == api:
		d.r.add(Fail, checkAdminToken, "%s equals %s, which every pipeline holds: rolekeeper keeps the admin routes closed (401) until it is a different token (openssl rand -hex 32)",
			config.EnvAdminToken, config.EnvAPIToken)
	case len(admin) < minSecretLen:
		d.r.add(Warn, checkAdminToken, "%s is shorter than %d characters: use a long random token (openssl rand -hex 32)", config.EnvAdminToken, minSecretLen)
	default:
		d.r.add(OK, checkAdminToken, "%s is set: deliveries, redrive, decisions, reports and break-glass through /api/v1 need it; keep it out of pipelines", config.EnvAdminToken)
	}
}

// checkDryRun says whether rolekeeper will change anything upstream, and
// why not.
func (d *doctor) checkDryRun() {
	if d.cfg.DryRun {
		d.r.add(Warn, checkDryRun, "on (dry_run: true): every decision is recorded, nothing is written to Bitbucket or Jira. Set dry_run: false once the decisions look right")
		return
	}
	var dry []string
	if !d.secrets.HasBitbucketAPI() {
		dry = append(dry, "Bitbucket (no API credentials)")
	}
	if d.cfg.Jira.BaseURL != "" && !d.secrets.HasJiraAPI() {
		dry = append(dry, "Jira (no API credentials)")
	}
	if len(dry) > 0 {
		d.r.add(Warn, checkDryRun, "off, but rolekeeper runs dry on %s: it decides and records, and changes nothing there", strings.Join(dry, " and "))
		return
	}
	what := "reviewers, commit statuses and comments on Bitbucket"
	if d.cfg.Jira.BaseURL != "" {
		what += "; sub-tasks, links and comments in Jira"
	}
	d.r.add(OK, checkDryRun, "off: rolekeeper writes %s", what)
}
