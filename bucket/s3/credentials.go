package s3

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/ini.v1"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// DefaultCredentials finds S3 credentials, region and endpoint the way
// the AWS tools do, for frontends (the library itself reads no
// environment): a profile given here (a --profile flag) is read from the
// shared files; otherwise AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
// (with AWS_SESSION_TOKEN) win, then the profile AWS_PROFILE or
// "default". The shared files are AWS_SHARED_CREDENTIALS_FILE
// (~/.aws/credentials, sections [NAME]) and AWS_CONFIG_FILE
// (~/.aws/config, sections [profile NAME] and [default]). The region is
// AWS_REGION, AWS_DEFAULT_REGION or the profile's region; the endpoint
// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the profile's endpoint_url.
// Finding nothing is no error (anonymous access); a named profile found
// in neither file is. Single sign-on, credential_process and instance
// roles are not read.
func DefaultCredentials(profile string) (bucket.Config, error) {
	home, _ := os.UserHomeDir()
	return defaultCredentials(os.Getenv, os.ReadFile, home, profile)
}

func defaultCredentials(getenv func(string) string, readFile func(string) ([]byte, error), home, profile string) (bucket.Config, error) {
	var cfg bucket.Config
	named := profile != ""
	fromEnv := false
	if !named {
		if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
			cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = id, secret, getenv("AWS_SESSION_TOKEN")
			fromEnv = true
		}
		profile = getenv("AWS_PROFILE")
		named = profile != ""
	}
	if profile == "" {
		profile = "default"
	}
	credFile := or(getenv("AWS_SHARED_CREDENTIALS_FILE"), filepath.Join(home, ".aws", "credentials"))
	confFile := or(getenv("AWS_CONFIG_FILE"), filepath.Join(home, ".aws", "config"))
	read := func(path string) ([]byte, error) {
		if home == "" && !filepath.IsAbs(path) {
			return nil, nil
		}
		b, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading S3 credentials: %v", dotmesh.ErrInvalidArgument, err)
		}
		return b, nil
	}
	credData, err := read(credFile)
	if err != nil {
		return cfg, err
	}
	confData, err := read(confFile)
	if err != nil {
		return cfg, err
	}
	p, found, err := readProfile(credFile, credData, confFile, confData, profile)
	if err != nil {
		return cfg, fmt.Errorf("%w: reading S3 profile %s: %v", dotmesh.ErrInvalidArgument, profile, err)
	}
	if !found && named {
		return cfg, fmt.Errorf("%w: S3 profile %q is in neither %s nor %s", dotmesh.ErrNotFound, profile, credFile, confFile)
	}
	if !fromEnv && p.AccessKey != "" {
		cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = p.AccessKey, p.SecretKey, p.SessionToken
	}
	cfg.Region = or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), p.Region)
	cfg.Endpoint = or(getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL"), p.Endpoint)
	return cfg, nil
}

// readProfile reads one profile from the shared credentials file (section
// [NAME]) and the config file ([profile NAME], or [default]); the
// credentials file wins where both have a key.
func readProfile(credFile string, credData []byte, confFile string, confData []byte, profile string) (bucket.Config, bool, error) {
	var cfg bucket.Config
	found := false
	confSection := "profile " + profile
	if profile == "default" {
		confSection = "default"
	}
	for _, f := range []struct {
		path    string
		data    []byte
		section string
	}{{confFile, confData, confSection}, {credFile, credData, profile}} {
		if len(f.data) == 0 {
			continue
		}
		file, err := ini.LoadSources(ini.LoadOptions{Insensitive: false, AllowNestedValues: true, SkipUnrecognizableLines: false}, f.data)
		if err != nil {
			return bucket.Config{}, false, fmt.Errorf("%s: %s", f.path, strings.Join(strings.Fields(err.Error()), " "))
		}
		sec, err := file.GetSection(f.section)
		if err != nil {
			continue
		}
		found = true
		set := func(dst *string, key string) {
			if v := sec.Key(key).String(); v != "" {
				*dst = v
			}
		}
		set(&cfg.AccessKey, "aws_access_key_id")
		set(&cfg.SecretKey, "aws_secret_access_key")
		set(&cfg.SessionToken, "aws_session_token")
		set(&cfg.Region, "region")
		set(&cfg.Endpoint, "endpoint_url")
	}
	return cfg, found, nil
}

func or(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
