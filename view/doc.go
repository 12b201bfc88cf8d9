// Package view is how hoist shows events and states: one-line summaries of
// changes, and the JSON shapes of the reads ('hoist state --json', 'hoist
// log --json'), shared by the CLI and the HTTP API so that both say the
// same. Plain env values that look secret are masked unless asked;
// sealed secrets are never shown, only their names and key versions.
//
// It does no I/O.
package view
