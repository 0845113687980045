package cli

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/internal/node"
)

func (a *app) registryCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "registry",
		Short: "Repair the local node's registry",
		Long: `The registry holds the names of dots, their branches and heads, and the
metadata of every commit. A node alone keeps it in DIR/registry.db (bbolt);
the nodes of a cluster keep it in etcd, which these commands do not cover
(restore etcd from its backup instead).`,
		Args: subcommandArgs,
	}
	c.AddCommand(a.registryRebuildCmd())
	return c
}

func (a *app) registryRebuildCmd() *cobra.Command {
	var (
		dir string
		sf  storeCryptFlags
	)
	c := &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild a damaged or lost local registry from the backends",
		Long: `Rebuild the local registry DIR/registry.db from the copies of its records
that every backend keeps beside its data: dots (name, current branch,
upstreams), branches with their heads, and commits with their id, parent,
author, time, message and metadata. Only what a backend still holds data
for comes back.

A node refuses to start when its registry is damaged, or empty while the
backends hold data; stop nothing else and run this with the node stopped.
A registry that opens cleanly and holds dots is left alone. The old
registry file is kept aside as DIR/registry.db.damaged-<time>, never
deleted. Users, their API keys, sharing and the audit are not kept by
the backends: add the users and share the dots again (the admin's key
comes back from DIR/admin-api-key). The registry of a cluster node is etcd: restore etcd
from its backup instead. An encrypted files store (made with --encrypt)
needs its password: --password-file, $` + storePasswordEnv + `, or a prompt.`,
		Example: `  dm registry rebuild
  dm registry rebuild --data-dir /var/lib/dotmesh`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			d, err := a.localDataDir(dir, cfg)
			if err != nil {
				return err
			}
			if err := notWired(a.nodes.RebuildRegistry != nil); err != nil {
				return err
			}
			password, err := a.storePassword(d, &sf)
			if err != nil {
				return err
			}
			res, err := a.nodes.RebuildRegistry(cmd.Context(), node.Config{DataDir: d, StorePassword: password, Logger: slog.New(slog.NewTextHandler(a.io.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return writeJSON(a.out(), map[string]any{
					"registry": res.Registry, "kept_aside": res.KeptAside,
					"dots": res.Dots, "branches": res.Branches, "commits": res.Commits, "skipped": res.Skipped,
				})
			}
			a.info("Rebuilt %s: %d dots, %d branches, %d commits (%d records without data left out).", res.Registry, res.Dots, res.Branches, res.Commits, res.Skipped)
			if res.KeptAside != "" {
				a.info("The old registry is kept as %s.", res.KeptAside)
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "data-dir", "", "data directory `DIR` of the node (default: the one in the config)")
	c.Flags().StringVar(&sf.passwordFile, "password-file", "", "read the encrypted files store's password from `FILE` (else $"+storePasswordEnv+", or a prompt)")
	return c
}
