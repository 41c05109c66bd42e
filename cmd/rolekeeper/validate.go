package main

import (
	"context"
	"fmt"
	"io"

	"github.com/reloadly/rolekeeper/internal/roles"
)

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	fs := newFlags("validate", stderr)
	rolesPath := fs.String("roles", "", "roles `file` to check")
	configPath := fs.String("config", "", "configuration `file` to check, with the roles file it names")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s validate --roles FILE | --config FILE\n\n"+
			"Exit status: 0 valid (warnings may be printed), 1 invalid (one FILE:LINE:COL line per problem on stderr), 2 usage.\n\n", programName)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	if (*rolesPath == "") == (*configPath == "") {
		fmt.Fprintln(stderr, "validate: give exactly one of --roles or --config")
		fs.Usage()
		return exitUsage
	}

	path := *rolesPath
	if *configPath != "" {
		cfg, code := loadConfig(*configPath, stderr)
		if code != exitOK {
			return code
		}
		fmt.Fprintf(stdout, "%s: valid\n", *configPath)
		path = cfg.Roles
	}
	org, err := roles.Load(path)
	if err != nil {
		printProblems(stderr, err)
		return exitFailed
	}
	for _, w := range org.Warnings {
		fmt.Fprintln(stderr, w.String())
	}
	manual := 0
	for _, r := range org.Roles {
		for _, resp := range r.Responsibilities {
			if resp.Manual() {
				manual++
			}
		}
	}
	fmt.Fprintf(stdout, "%s: valid: %d roles, %d teams, %d people, %d rules, %d manual responsibilities, %d warnings\n",
		path, len(org.Roles), len(org.Teams), len(org.People), len(org.Rules), manual, len(org.Warnings))
	return exitOK
}
