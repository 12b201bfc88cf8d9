package events

import (
	"fmt"
	"path"
	"strings"

	"github.com/hoist-dev/hoist/secrets"
)

// Secret kinds. Secrets, grants and scope keys are config kinds: each takes
// the scope's next revision, so they are ordered with the deploys they
// belong to and audited like them. Only ciphertext is ever stored: see
// package secrets and docs/secrets.md.
const (
	// KindSecretSet stores a secret's value, sealed to the scope's key. A
	// deployer's kind.
	KindSecretSet Kind = "secret_set"
	// KindSecretRemoved drops a secret. A deployer's kind.
	KindSecretRemoved Kind = "secret_removed"
	// KindSecretRotate asks a granted agent to make a new scope key and
	// reseal every secret to it. A deployer's kind.
	KindSecretRotate Kind = "secret_rotate"
	// KindSecretGranted lets a node open the scope's secrets. An admin's
	// kind: a grant extends trust to a machine.
	KindSecretGranted Kind = "secret_granted"
	// KindSecretRevoked takes a node's grant back and asks for a new key,
	// which the node is not given. An admin's kind.
	KindSecretRevoked Kind = "secret_revoked"
	// KindSecretKey is a scope key, or more nodes' copies of it: published
	// only by a granted agent.
	KindSecretKey Kind = "secret_key"
)

// KindNodeKey announces a node's public key, which grants seal scope keys
// to. It is a node kind, published by the node's agent.
const KindNodeKey Kind = "node_key"

// Secret is one secret of a spec: its value sealed to version Key of the
// scope's key pair. With File set, replicas see it as a file at that path;
// otherwise as the environment variable of its name.
type Secret struct {
	Key    int    `json:"key"`
	Sealed string `json:"sealed"`
	File   string `json:"file,omitempty"`
}

// SecretSet sets the secret Name.
type SecretSet struct {
	Name string `json:"name"`
	Secret
}

// SecretRemoved drops the secret Name.
type SecretRemoved struct {
	Name string `json:"name"`
}

// SecretRotate asks for a new scope key.
type SecretRotate struct{}

// SecretGranted lets Node open the scope's secrets. NodeKey is the node's
// public key as the node announced it, and Actor the name it announced it
// under: only events of that actor may hand the scope key to others on the
// node's behalf.
type SecretGranted struct {
	Node    string `json:"node"`
	NodeKey string `json:"node_key"`
	Actor   string `json:"actor"`
}

// SecretRevoked takes Node's grant back.
type SecretRevoked struct {
	Node string `json:"node"`
}

// SecretKey is version Version of the scope's key pair. Seeds holds the
// private key sealed to each granted node's key, by node. Node is the
// granted node that published it. A new version also carries every secret
// of the current spec resealed to it (Resealed, by name); an event at the
// current version only adds seeds for more nodes.
type SecretKey struct {
	Version  int               `json:"version"`
	Public   string            `json:"public"`
	Node     string            `json:"node"`
	Seeds    map[string]string `json:"seeds"`
	Resealed map[string]string `json:"resealed,omitempty"`
}

// NodeKey is a node's public key.
type NodeKey struct {
	Public string `json:"public"`
}

func (SecretSet) Kind() Kind     { return KindSecretSet }
func (SecretRemoved) Kind() Kind { return KindSecretRemoved }
func (SecretRotate) Kind() Kind  { return KindSecretRotate }
func (SecretGranted) Kind() Kind { return KindSecretGranted }
func (SecretRevoked) Kind() Kind { return KindSecretRevoked }
func (SecretKey) Kind() Kind     { return KindSecretKey }
func (NodeKey) Kind() Kind       { return KindNodeKey }

// MaxSecrets bounds the secrets of one scope.
const MaxSecrets = 256

// validateSecretName checks a secret's name, which is also the name of
// the environment variable it becomes.
func validateSecretName(name string) error {
	if err := ValidateEnv(name, ""); err != nil {
		return &FieldError{Field: "secret " + fmt.Sprintf("%q", name), Problem: "is not a valid name (letters, digits and '_', not starting with a digit)"}
	}
	return nil
}

// ValidateSecretFile checks the path a secret is written to inside a
// replica: absolute, clean, and not a directory of the system.
func ValidateSecretFile(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return &FieldError{Field: "file", Problem: fmt.Sprintf("%q must be an absolute path", p)}
	case path.Clean(p) != p || p == "/":
		return &FieldError{Field: "file", Problem: fmt.Sprintf("%q is not a clean file path (want e.g. /run/secrets/db_password)", p)}
	case len(p) > 1024:
		return &FieldError{Field: "file", Problem: "is longer than 1024 characters"}
	}
	for _, c := range p {
		if c < ' ' || c == 0x7f {
			return &FieldError{Field: "file", Problem: fmt.Sprintf("%q contains a control character", p)}
		}
	}
	return nil
}

func (s *Secret) validate(name string) error {
	field := "secret " + name
	if s.Key < 1 {
		return &FieldError{Field: field + " key", Problem: fmt.Sprintf("is %d (want a key version ≥ 1)", s.Key)}
	}
	if err := secrets.ValidateSealed(s.Sealed); err != nil {
		return &FieldError{Field: field, Problem: err.Error()}
	}
	if s.File != "" {
		if err := ValidateSecretFile(s.File); err != nil {
			return err
		}
	}
	return nil
}

func validateSecrets(m map[string]Secret) error {
	if len(m) > MaxSecrets {
		return &FieldError{Field: "secrets", Problem: fmt.Sprintf("has %d secrets (at most %d)", len(m), MaxSecrets)}
	}
	files := map[string]string{}
	for name, s := range m {
		if err := validateSecretName(name); err != nil {
			return err
		}
		if err := s.validate(name); err != nil {
			return err
		}
		if s.File != "" {
			if other, ok := files[s.File]; ok {
				return &FieldError{Field: "secret " + name, Problem: fmt.Sprintf("has the file %s of secret %s", s.File, other)}
			}
			files[s.File] = name
		}
	}
	return nil
}

func (s *SecretSet) Validate() error {
	if err := validateSecretName(s.Name); err != nil {
		return err
	}
	return s.Secret.validate(s.Name)
}

func (s *SecretRemoved) Validate() error { return validateSecretName(s.Name) }

func (*SecretRotate) Validate() error { return nil }

func (g *SecretGranted) Validate() error {
	if err := ValidateNodeName(g.Node); err != nil {
		return &FieldError{Field: "node", Problem: err.Error()}
	}
	if _, err := secrets.ParsePublicKey(g.NodeKey); err != nil {
		return &FieldError{Field: "node_key", Problem: err.Error()}
	}
	if err := ValidateActor(g.Actor); err != nil {
		return &FieldError{Field: "actor", Problem: err.Error()}
	}
	return nil
}

func (r *SecretRevoked) Validate() error {
	if err := ValidateNodeName(r.Node); err != nil {
		return &FieldError{Field: "node", Problem: err.Error()}
	}
	return nil
}

func (k *SecretKey) Validate() error {
	if k.Version < 1 {
		return &FieldError{Field: "version", Problem: fmt.Sprintf("is %d (want ≥ 1)", k.Version)}
	}
	if _, err := secrets.ParsePublicKey(k.Public); err != nil {
		return &FieldError{Field: "public", Problem: err.Error()}
	}
	if err := ValidateNodeName(k.Node); err != nil {
		return &FieldError{Field: "node", Problem: err.Error()}
	}
	if len(k.Seeds) == 0 {
		return &FieldError{Field: "seeds", Problem: "is empty (a key no node can open)"}
	}
	for node, sealed := range k.Seeds {
		if err := ValidateNodeName(node); err != nil {
			return &FieldError{Field: "seeds", Problem: err.Error()}
		}
		if err := secrets.ValidateSealed(sealed); err != nil {
			return &FieldError{Field: "seeds " + node, Problem: err.Error()}
		}
	}
	if len(k.Resealed) > MaxSecrets {
		return &FieldError{Field: "resealed", Problem: fmt.Sprintf("has %d secrets (at most %d)", len(k.Resealed), MaxSecrets)}
	}
	for name, sealed := range k.Resealed {
		if err := validateSecretName(name); err != nil {
			return err
		}
		if err := secrets.ValidateSealed(sealed); err != nil {
			return &FieldError{Field: "resealed " + name, Problem: err.Error()}
		}
	}
	return nil
}

func (n *NodeKey) Validate() error {
	if _, err := secrets.ParsePublicKey(n.Public); err != nil {
		return &FieldError{Field: "public", Problem: err.Error()}
	}
	return nil
}
