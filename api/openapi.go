package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the contract of the HTTP API; TestOpenAPIMatchesRoutes
// holds it to the routes.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}
