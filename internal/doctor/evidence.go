package doctor

// evidence.go (h6): whether the evidence log's checkpoints are signed.

import (
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/evidence"
)

const checkEvidence = "evidence"

func (d *doctor) checkEvidence() {
	if d.secrets.EvidenceKey == "" {
		d.r.add(Warn, checkEvidence, "%s is not set: evidence checkpoints are unsigned, so someone with write access to the database could rewrite the decision log and its checkpoints together. Generate a key (see docs/evidence.md) and keep it out of the database's reach",
			config.EnvEvidenceKey)
		return
	}
	s, err := evidence.ParsePrivateKey(d.secrets.EvidenceKey)
	if err != nil {
		d.r.add(Fail, checkEvidence, "%s: %v", config.EnvEvidenceKey, err)
		return
	}
	d.r.add(OK, checkEvidence, "%s is set: checkpoints are signed; public key %s (`rolekeeper evidence pubkey`)",
		config.EnvEvidenceKey, evidence.EncodePublicKey(s.PublicKey()))
}
