package secrets

import (
	"maps"
	"net/url"
	"strings"
)

// secretWords are the parts of a variable's name that say its value is a
// secret.
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL", "ACCESS_KEY"}

// LooksSecret reports whether a plain environment variable looks like it
// holds a secret: its name says so, or its value is a URL with a password
// (postgres://user:pw@host/db).
func LooksSecret(name, value string) bool {
	upper := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(upper, w) {
			return true
		}
	}
	if !strings.Contains(value, "://") {
		return false
	}
	u, err := url.Parse(value)
	if err != nil || u.User == nil {
		return false
	}
	_, hasPassword := u.User.Password()
	return hasPassword
}

// mask is what a masked value is shown as.
const mask = "<hidden: looks secret>"

// MaskEnv returns env with the values that look secret replaced by Mask,
// and whether it replaced any. env itself is not changed.
func MaskEnv(env map[string]string) (map[string]string, bool) {
	var out map[string]string
	for k, v := range env {
		if LooksSecret(k, v) {
			if out == nil {
				out = maps.Clone(env)
			}
			out[k] = mask
		}
	}
	if out == nil {
		return env, false
	}
	return out, true
}
