// Command panther-datadog puts the pantherOS Datadog monitors and dashboards
// into a Datadog organisation, idempotently, with the notification handles
// of a configuration file:
//
//	panther-datadog plan  --notify-config rules/datadog/notify.yaml   # show what would change
//	panther-datadog apply --notify-config rules/datadog/notify.yaml   # show it, then change it
//
// The API and application keys are read from files (--api-key-file,
// --app-key-file; a secret manager writes them at run time), or from
// DD_API_KEY and DD_APP_KEY when no file is given. See docs/datadog.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pantheros/monitoring/rules/datadog/apply"
)

type notifyFlags []string

func (n *notifyFlags) String() string     { return strings.Join(*n, " ") }
func (n *notifyFlags) Set(v string) error { *n = append(*n, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "panther-datadog:", err)
		var ex exitCode
		if errors.As(err, &ex) {
			os.Exit(int(ex))
		}
		os.Exit(1)
	}
}

// exitCode is returned by plan --detailed-exitcode when there are changes.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

const usage = `usage: panther-datadog plan|apply [flags]

  plan   show what apply would create, update or delete; change nothing
  apply  show the plan, then carry it out

flags:
`

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "plan" && args[0] != "apply") {
		fs := flags(new(options))
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return fmt.Errorf("want a subcommand\n%s%s", usage, b.String())
	}
	mode := args[0]
	o := new(options)
	fs := flags(o)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	notify := apply.Notify{}
	if o.notifyConfig != "" {
		var err error
		if notify, err = apply.LoadNotify(o.notifyConfig); err != nil {
			return err
		}
	}
	for _, spec := range o.notify {
		if err := notify.Set(spec); err != nil {
			return err
		}
	}
	if err := notify.Validate(); err != nil {
		return fmt.Errorf("%w (set them in --notify-config or with --notify CLASS.ROLE=@handle)", err)
	}
	monitors, err := apply.LoadMonitors(o.monitors, notify)
	if err != nil {
		return err
	}
	dashboards, err := apply.LoadDashboards(o.dashboards)
	if err != nil {
		return err
	}

	apiKey, err := secret(o.apiKeyFile, "DD_API_KEY", "--api-key-file")
	if err != nil {
		return err
	}
	appKey, err := secret(o.appKeyFile, "DD_APP_KEY", "--app-key-file")
	if err != nil {
		return err
	}
	c, err := apply.NewClient(o.site, o.apiURL, apiKey, appKey)
	if err != nil {
		return err
	}
	plan, err := c.Plan(monitors, dashboards, o.prune)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, plan.String())
	if mode == "plan" {
		if o.detailedExitCode && plan.Changes() > 0 {
			return exitCode(2)
		}
		return nil
	}
	if plan.Changes() == 0 {
		fmt.Fprintln(stdout, "nothing to change")
		return nil
	}
	return c.Apply(plan, func(s string) { fmt.Fprintln(stdout, s) })
}

type options struct {
	monitors, dashboards    string
	notifyConfig            string
	notify                  notifyFlags
	apiKeyFile, appKeyFile  string
	site, apiURL            string
	prune, detailedExitCode bool
}

func flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("panther-datadog", flag.ContinueOnError)
	fs.StringVar(&o.monitors, "monitors", "rules/datadog/monitors", "directory of monitor bodies (*.json)")
	fs.StringVar(&o.dashboards, "dashboards", "dashboards/datadog", "directory of dashboard bodies (*.json)")
	fs.StringVar(&o.notifyConfig, "notify-config", "", "YAML file of notification handles per class and role (see rules/datadog/notify.yaml)")
	fs.Var(&o.notify, "notify", "CLASS.ROLE=@handle[,@handle]: handles for one class (critical, warning, data_loss) and role (server, workstation); repeatable, overrides --notify-config")
	fs.StringVar(&o.apiKeyFile, "api-key-file", "", "file holding the Datadog API key (else $DD_API_KEY)")
	fs.StringVar(&o.appKeyFile, "app-key-file", "", "file holding the Datadog application key (else $DD_APP_KEY)")
	fs.StringVar(&o.site, "site", os.Getenv("DD_SITE"), "Datadog site (datadoghq.com, datadoghq.eu, us3.datadoghq.com, ...); default $DD_SITE, else datadoghq.com")
	fs.StringVar(&o.apiURL, "api-url", "", "base URL of the API instead of the site's (a proxy)")
	fs.BoolVar(&o.prune, "prune", false, "delete monitors and dashboards that carry the pantherOS tag or marker but have no file")
	fs.BoolVar(&o.detailedExitCode, "detailed-exitcode", false, "plan: exit 2 when there are changes (0 when none)")
	return fs
}

// secret reads a key from a file (first line, surrounding space trimmed),
// else from an environment variable. Errors name the file, never its bytes.
func secret(file, env, flagName string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flagName, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if k := strings.TrimSpace(line); k != "" {
			return k, nil
		}
		return "", fmt.Errorf("%s: %s is empty", flagName, file)
	}
	if k := strings.TrimSpace(os.Getenv(env)); k != "" {
		return k, nil
	}
	return "", fmt.Errorf("no key: give %s (a file a secret manager provides) or set $%s", flagName, env)
}
