package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask hoist itself for candidates: urfave/cli
// answers a trailing --generate-bash-completion with the subcommands, or
// with the flags when the word being completed starts with "-". They follow
// urfave/cli's autocomplete/ scripts, with the program name filled in (a
// sourced "<(hoist completion bash)" has no useful file name to take it
// from) and without bash-completion's helpers, which many systems lack.
const bashCompletion = `# bash completion for hoist
# Install: hoist completion bash > /etc/bash_completion.d/hoist
#     or:  echo 'source <(hoist completion bash)' >> ~/.bashrc
_hoist_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  words[0]="${words[0]/#\~/$HOME}"
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  return 0
}
complete -o bashdefault -o default -F _hoist_complete hoist
`

const zshCompletion = `#compdef hoist
# zsh completion for hoist
# Install: hoist completion zsh > "${fpath[1]}/_hoist"   (then start a new shell)
#     or:  echo 'source <(hoist completion zsh)' >> ~/.zshrc   (after compinit)
_hoist() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
if [[ "$funcstack[1]" == "_hoist" ]]; then
  _hoist "$@"
else
  compdef _hoist hoist
fi
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints a script that completes hoist's commands and flags. bash and zsh ask
hoist itself as you type, so the hoist on your PATH must be the one completed.

Install:
   bash:  hoist completion bash | sudo tee /etc/bash_completion.d/hoist >/dev/null
          or, for one user: echo 'source <(hoist completion bash)' >> ~/.bashrc
   zsh:   hoist completion zsh > "${fpath[1]}/_hoist"       # then start a new shell
   fish:  hoist completion fish > ~/.config/fish/completions/hoist.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("usage: hoist completion bash|zsh|fish")
			}
			return writeCompletion(c.App, c.Args().First(), c.App.Writer)
		},
	}
}

// writeCompletion writes the completion script for shell.
func writeCompletion(app *cli.App, shell string, w io.Writer) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("fish completion: %w", err)
		}
		script = "# fish completion for hoist\n# Install: hoist completion fish > ~/.config/fish/completions/hoist.fish\n" + s
	default:
		return usagef("completion: unknown shell %q: want bash, zsh or fish", shell)
	}
	_, err := io.WriteString(w, script)
	return err
}
