package nodeagent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/hoist-dev/hoist/events"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		name, in, host string
		want           string // "name scopes advertise", or the error
		wantErr        bool
	}{
		{name: "hikari fields", in: "version = \"1\"\nname = \"node-1\"\nclient = \"acme\"\nenvironment = \"prod\"\nsolution = \"web\"\n",
			want: "node-1 [acme.prod.web] 127.0.0.1"},
		{name: "scopes list sorted", in: "name = \"n\"\nscopes = [\"acme.prod.web\", \"acme.prod.api\"]\nadvertise = \"10.0.0.5\"\n",
			want: "n [acme.prod.api acme.prod.web] 10.0.0.5"},
		{name: "default name from hostname", in: "client = \"a\"\nenvironment = \"b\"\nsolution = \"c\"\n", host: "Web-01.example.com",
			want: "web-01 [a.b.c] 127.0.0.1"},
		{name: "dns advertise", in: "name = \"n\"\nscopes = [\"a.b.c\"]\nadvertise = \"node1.internal\"\n",
			want: "n [a.b.c] node1.internal"},
		{name: "ipv6 advertise", in: "name = \"n\"\nscopes = [\"a.b.c\"]\nadvertise = \"::1\"\n",
			want: "n [a.b.c] ::1"},

		{name: "unknown key", in: "name = \"n\"\nscopes = [\"a.b.c\"]\n\nsolutoin = \"web\"\n", wantErr: true,
			want: `node.toml:4: "solutoin" is not a known key`},
		{name: "bad version", in: "version = \"2\"\nname = \"n\"\nscopes = [\"a.b.c\"]\n", wantErr: true,
			want: `node.toml:1: version is "2"; this hoist reads version "1"`},
		{name: "uppercase name", in: "name = \"Node-1\"\nscopes = [\"a.b.c\"]\n", wantErr: true,
			want: `node.toml:1: name is invalid: invalid node name "Node-1": must be lowercase`},
		{name: "bad scope in list", in: "name = \"n\"\nscopes = [\"a.b.c\",\n  \"acme.Prod.web\"]\n", wantErr: true,
			want: `node.toml:2: scopes is invalid: entry 2: invalid scope "acme.Prod.web": environment "Prod" must be lowercase`},
		{name: "bad token", in: "name = \"n\"\nclient = \"acme\"\nenvironment = \"pr_od\"\nsolution = \"web\"\n", wantErr: true,
			want: `node.toml:3: environment is invalid: "pr_od" has '_' at byte 3`},
		{name: "partial triple", in: "name = \"n\"\nclient = \"acme\"\nsolution = \"web\"\n", wantErr: true,
			want: `node.toml: environment is missing: client, environment and solution go together`},
		{name: "both forms", in: "name = \"n\"\nclient = \"a\"\nenvironment = \"b\"\nsolution = \"c\"\nscopes = [\"a.b.c\"]\n", wantErr: true,
			want: `node.toml:5: scopes cannot be combined`},
		{name: "no scope", in: "name = \"n\"\n", wantErr: true, want: `node.toml: names no scope`},
		{name: "duplicate scope", in: "name = \"n\"\nscopes = [\"a.b.c\", \"a.b.c\"]\n", wantErr: true,
			want: `node.toml:2: scopes lists a.b.c twice (entries 1 and 2)`},
		{name: "advertise with port", in: "name = \"n\"\nscopes = [\"a.b.c\"]\nadvertise = \"10.0.0.1:80\"\n", wantErr: true,
			want: `node.toml:3: advertise is invalid: "10.0.0.1:80" must be a host without a port`},
		{name: "wrong type", in: "name = 5\nscopes = [\"a.b.c\"]\n", wantErr: true,
			want: `node.toml:1: name is invalid: must be a string, not an integer`},
		{name: "wrong type of version", in: "version = 1\nname = \"n\"\nscopes = [\"a.b.c\"]\n", wantErr: true,
			want: `node.toml:1: version is invalid: must be a string, not an integer`},
		{name: "wrong type, a later line", in: "name = \"n\"\nclient = \"a\"\nenvironment = true\nsolution = \"c\"\n", wantErr: true,
			want: `node.toml:3: environment is invalid: must be a string, not a boolean`},
		{name: "scopes not an array", in: "name = \"n\"\nscopes = \"a.b.c\"\n", wantErr: true,
			want: `node.toml:2: scopes is invalid: must be an array of scopes, not `},
		{name: "a scope not a string", in: "name = \"n\"\nscopes = [\"a.b.c\", 7]\n", wantErr: true,
			want: `node.toml:2: scopes is invalid: entry 2: must be a string, not an integer`},
		{name: "syntax error", in: "name = \"n\nscopes = []\n", wantErr: true, want: `node.toml:1: `},
		{name: "bad hostname", in: "scopes = [\"a.b.c\"]\n", host: "my_host", wantErr: true,
			want: `node.toml: name is not set and the hostname "my_host" does not make a valid node name`},
		{name: "unknown table", in: "name = \"n\"\nscopes = [\"a.b.c\"]\n[extra]\nx = 1\n", wantErr: true,
			want: `node.toml:3: "extra" is not a known key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = "fallback"
			}
			n, err := parseNode("node.toml", []byte(tt.in), host)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error %q, got %+v", tt.want, n)
				}
				if !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("error\n  %q\nwant prefix\n  %q", err, tt.want)
				}
				if !errors.Is(err, events.ErrInvalid) {
					t.Errorf("error %v is not events.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			var scopes []string
			for _, s := range n.Scopes {
				scopes = append(scopes, s.String())
			}
			got := n.Name + " [" + strings.Join(scopes, " ") + "] " + n.Advertise
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseAgentConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	af, err := parseAgentConfig(file, []byte(`reference_file_path = "reference.json"`))
	if err != nil || af.ReferenceFile != filepath.Join(dir, "reference.json") {
		t.Fatalf("relative path: got %+v, %v", af, err)
	}
	af, err = parseAgentConfig(file, []byte(`reference_file_path = "/var/lib/hoist/ref.json"`))
	if err != nil || af.ReferenceFile != "/var/lib/hoist/ref.json" {
		t.Fatalf("absolute path: got %+v, %v", af, err)
	}
	af, err = parseAgentConfig(file, nil)
	if err != nil || af.ReferenceFile != "" {
		t.Fatalf("empty file: got %+v, %v", af, err)
	}
	for in, want := range map[string]string{
		"reference_file = \"x\"\n":           file + `:1: "reference_file" is not a known key`,
		"\nreference_file_path = \"\"\n":     file + `:2: reference_file_path must be a file path`,
		"reference_file_path = 3\n":          file + `:1: reference_file_path is invalid: must be a string, not an integer`,
		"reference_file_path = \"a\"\nx = [": file + `:2: `,
	} {
		_, err := parseAgentConfig(file, []byte(in))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got error %v, want prefix %q", in, err, want)
		}
	}
}

func TestLoadNodeNamesTheFile(t *testing.T) {
	_, err := LoadNode(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.toml") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseNode(f *testing.F) {
	f.Add([]byte("version = \"1\"\nname = \"node-1\"\nclient = \"acme\"\nenvironment = \"prod\"\nsolution = \"web\"\nadvertise = \"127.0.0.1\"\n"))
	f.Add([]byte("scopes = [\"acme.prod.web\", \"acme.prod.api\"]\n"))
	f.Add([]byte("name = \"x\"\n[t]\na = 1\n"))
	f.Add([]byte("name = 'n'\nscopes = ['a.b.c',]\nadvertise = \"::1\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := parseNode("node.toml", data, "host")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *ConfigError: %T %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "node.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := events.ValidateNodeName(n.Name); err != nil {
			t.Fatalf("accepted an invalid name: %v", err)
		}
		if len(n.Scopes) == 0 {
			t.Fatal("accepted a node with no scope")
		}
		for _, s := range n.Scopes {
			if _, err := events.ParseScope(s.String()); err != nil {
				t.Fatalf("accepted an invalid scope: %v", err)
			}
		}
		if err := events.ValidateBackend(n.Advertise + ":1"); err != nil && !strings.Contains(n.Advertise, ":") {
			t.Fatalf("accepted an invalid advertise host %q: %v", n.Advertise, err)
		}
	})
}

// tomlError reads the key and the line from a toml.ParseError, whether the
// decoder made it (syntax) or a field's own decoding did (a type).
func TestTomlError(t *testing.T) {
	for in, want := range map[string]string{
		"a = 1\nb = \"x":       "f.toml:2: ",
		"\n\nname = [1]\n":     "f.toml:3: name is invalid: must be a string, not an array",
		"name = 2024-01-01\n":  "f.toml:1: name is invalid: must be a string, not a date or time",
		"version = \"1\"\nx=[": "f.toml:2: ",
	} {
		var nf nodeFile
		_, err := toml.Decode(in, &nf)
		var pe toml.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: decoder error %v is not a toml.ParseError", in, err)
		}
		got := tomlError("f.toml", err)
		var ce *ConfigError
		if !errors.As(got, &ce) || !strings.HasPrefix(got.Error(), want) || ce.Line != pe.Position.Line {
			t.Errorf("%q: %v (line %d), want prefix %q at line %d", in, got, ce.Line, want, pe.Position.Line)
		}
	}
	if got := tomlError("f.toml", errors.New("boom")); got.Error() != "f.toml: boom" {
		t.Errorf("another error: %v", got)
	}
}
