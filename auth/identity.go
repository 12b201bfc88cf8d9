package auth

import (
	"fmt"
	"os"

	"github.com/nats-io/jwt/v2"
)

// Identity is the name of the credential in a creds file: the actor of
// its events and the suffix of its inbox prefix.
func Identity(credsFile string) (string, error) {
	b, err := os.ReadFile(credsFile)
	if err != nil {
		return "", fmt.Errorf("read credentials: %w", err)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return "", fmt.Errorf("credentials %s: %w", credsFile, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return "", fmt.Errorf("credentials %s: %w", credsFile, err)
	}
	if err := ValidateName("credential name", uc.Name); err != nil {
		return "", fmt.Errorf("credentials %s: %w", credsFile, err)
	}
	return uc.Name, nil
}
