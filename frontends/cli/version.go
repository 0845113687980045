package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of dm and of the current remote's node",
		Long: `Print the version of this dm and, when a remote is configured, the
version of the node it points at. An unreachable node is reported, not an
error.`,
		Example: `  dm version
  dm version --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			type versions struct {
				Client      string `json:"client"`
				Remote      string `json:"remote,omitempty"`
				Server      string `json:"server,omitempty"`
				ServerError string `json:"server_error,omitempty"`
			}
			v := versions{Client: Version}
			if s, err := a.connect(); err == nil {
				v.Remote = s.remoteName
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
				p, err := s.c.Ping(ctx)
				cancel()
				if err != nil {
					v.ServerError = oneLine(s.wrap(err).Error())
				} else {
					v.Server = p.Version
				}
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), v)
			case a.scripting:
				t := &table{scripting: true}
				t.add("client", v.Client)
				if v.Server != "" {
					t.add("server", v.Server)
				}
				return t.write(a.out())
			}
			fmt.Fprintf(a.out(), "Client: %s\n", v.Client)
			switch {
			case v.Server != "":
				fmt.Fprintf(a.out(), "Server: %s (remote %s)\n", v.Server, v.Remote)
			case v.ServerError != "":
				fmt.Fprintf(a.out(), "Server: unknown: %s\n", v.ServerError)
			}
			return nil
		},
	}
}
