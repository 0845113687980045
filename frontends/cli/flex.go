package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/frontends/flex"
)

// flexCall says whether args are a FlexVolume driver call (`dm flex init`,
// `mount`, `unmount` or any other word kubelet may send), which bypasses
// cobra: kubelet must see exactly one JSON object and nothing else.
func flexCall(args []string) bool {
	if len(args) < 2 || args[0] != "flex" {
		return false
	}
	switch a := args[1]; {
	case a == "install" || a == "help" || len(a) > 0 && a[0] == '-':
		return false
	}
	return true
}

// runFlex performs one driver call and prints its JSON result. A node
// that needs TLS, which this dm lacks (the light dm), gets the whole call
// from the dm that has it (w.HandOver), once the driver connects.
func runFlex(ctx context.Context, streams IO, w Wiring, args []string) int {
	if streams.Getenv == nil {
		streams.Getenv = os.Getenv
	}
	if streams.Stdout == nil {
		streams.Stdout = io.Discard
	}
	cfgPath, haveCfg := flex.ConfigPath(streams.Getenv)
	var cfg *flex.Config
	var cfgErr error
	if haveCfg {
		cfg, cfgErr = flex.LoadConfig(cfgPath)
	}
	log := slog.New(slog.DiscardHandler)
	if logPath := flexLogPath(cfg, cfgPath); logPath != "" {
		if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
			defer f.Close()
			log = slog.New(slog.NewTextHandler(f, nil))
		}
	}
	d := &flex.Driver{Log: log, Connect: func() (flex.Node, string, error) {
		switch {
		case cfgErr != nil:
			return nil, cfgPath, cfgErr
		case cfg != nil:
			if needsTLS(cfg.URL, cfg.CACert) && w.HandOver != nil {
				return nil, cfgPath, w.HandOver(append([]string{"flex"}, args...))
			}
			var opts []client.Option
			if cfg.CACert != "" {
				opts = append(opts, client.WithCACert([]byte(cfg.CACert)))
			}
			c, err := client.New(cfg.URL, cfg.User, cfg.APIKey, opts...)
			return c, cfgPath, err
		}
		// No driver config: the client config's "local" remote, as for
		// `dm flex mount` run by hand.
		a := &app{io: streams}
		path, ccfg, err := a.loadConfig()
		if err != nil {
			return nil, "the dm client config", err
		}
		r, ok := ccfg.Remotes["local"]
		if !ok {
			return nil, path, fmt.Errorf("no driver config %s next to the driver and no remote \"local\" in %s; run `dm flex install`", flex.ConfigFile, path)
		}
		if needsTLS(r.URL(), r.CACert) && w.HandOver != nil {
			return nil, path, w.HandOver(append([]string{"flex"}, args...))
		}
		c, err := newClient(r, true)
		return c, path + " (remote local)", err
	}}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second) // kubelet gives up after 2 minutes
	defer cancel()
	res, code := d.Run(ctx, args)
	b, _ := json.Marshal(res)
	fmt.Fprintf(streams.Stdout, "%s\n", b)
	return code
}

func flexLogPath(cfg *flex.Config, cfgPath string) string {
	switch {
	case cfg != nil && cfg.LogFile != "":
		return cfg.LogFile
	case cfgPath != "":
		return filepath.Join(filepath.Dir(cfgPath), "dm-flex.log")
	}
	return ""
}

func (a *app) flexCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "flex",
		Short: "Kubernetes FlexVolume driver",
		Long: `The Kubernetes FlexVolume driver dotmesh.io/dm. kubelet runs it as
` + flex.DefaultPluginDir + `/` + flex.DriverDir + `/` + flex.DriverFile + `
(` + "`dm flex install`" + ` puts it there) with one of:

  init                      answers {"status":"Success","capabilities":{"attach":false}}
  mount DIR JSON-OPTIONS    bind-mounts the subdot onto DIR (creating the dot if missing)
  unmount DIR               unmounts DIR and releases the subdot

Options (flexVolume.options): name (the dot, required), namespace, branch,
subdot — the parts of [namespace/]dot[@branch][.subdot]. Each call prints
one JSON object; logs go to dm-flex.log next to the driver. The driver
reaches the local node with the address and key in dm-flex.json next to
it, else with the "local" remote of the dm client config.

FlexVolume is deprecated in Kubernetes; prefer the CSI driver
(` + "`dm serve --csi-socket`" + `).`,
		Example: `  dm flex install
  dm flex mount /mnt/x '{"name":"app","subdot":"db"}'
  dm flex unmount /mnt/x`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.flexInstallCmd())
	return c
}

func (a *app) flexInstallCmd() *cobra.Command {
	var dir, logFile string
	c := &cobra.Command{
		Use:   "install",
		Short: "Install this dm as kubelet's FlexVolume driver",
		Long: `Copy the running dm binary to DIR/` + flex.DriverDir + `/` + flex.DriverFile + ` (atomically) and write
the current remote's address and API key to ` + flex.ConfigFile + ` next to it (mode
0600), so the driver reaches the node from kubelet's environment. Run it
on every Kubernetes node, as root, after ` + "`dm cluster init`" + `.`,
		Example: `  dm flex install
  dm flex install --dir /var/lib/kubelet/volumeplugins`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.connect()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the dm binary: %w", err)
			}
			path, err := flex.Install(dir, exe, flex.Config{
				URL: s.remote.URL(), User: s.remote.User, APIKey: s.remote.APIKey,
				CACert: s.remote.CACert, LogFile: logFile,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.io.Stdout, "installed the FlexVolume driver %s for remote %s\n", path, s.remoteName)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", flex.DefaultPluginDir, "kubelet's FlexVolume plugin `DIR` (its --volume-plugin-dir)")
	c.Flags().StringVar(&logFile, "log-file", "", "driver log `FILE` (default: dm-flex.log next to the driver)")
	return c
}
