package s3

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const credFile = `[default]
aws_access_key_id = DEFAULTKEY
aws_secret_access_key = defaultsecret

[work]
aws_access_key_id = WORKKEY
aws_secret_access_key = worksecret
aws_session_token = worktoken
`

const confFile = `[default]
region = eu-west-1

[profile work]
region = eu-central-1
endpoint_url = http://127.0.0.1:8333

[profile onlyconf]
aws_access_key_id = CONFKEY
aws_secret_access_key = confsecret
`

// Each case runs DefaultCredentials itself, with HOME and the AWS
// variables of the case (the rest unset).
func TestDefaultCredentials(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte(credFile), 0o600)
	os.WriteFile(filepath.Join(home, ".aws", "config"), []byte(confFile), 0o600)
	envKeys := []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"}
	for _, c := range []struct {
		name    string
		env     map[string]string
		profile string
		want    bucket.Config
	}{
		{"DefaultProfile", nil, "", bucket.Config{AccessKey: "DEFAULTKEY", SecretKey: "defaultsecret", Region: "eu-west-1"}},
		{"NamedProfile", nil, "work", bucket.Config{AccessKey: "WORKKEY", SecretKey: "worksecret", SessionToken: "worktoken", Region: "eu-central-1", Endpoint: "http://127.0.0.1:8333"}},
		{"EnvProfile", map[string]string{"AWS_PROFILE": "work"}, "", bucket.Config{AccessKey: "WORKKEY", SecretKey: "worksecret", SessionToken: "worktoken", Region: "eu-central-1", Endpoint: "http://127.0.0.1:8333"}},
		{"EnvKeysWin", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken", "AWS_PROFILE": "work"}, "", bucket.Config{AccessKey: "ENVKEY", SecretKey: "envsecret", SessionToken: "envtoken", Region: "eu-central-1", Endpoint: "http://127.0.0.1:8333"}},
		{"FlagProfileBeatsEnvKeys", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"}, "work", bucket.Config{AccessKey: "WORKKEY", SecretKey: "worksecret", SessionToken: "worktoken", Region: "eu-central-1", Endpoint: "http://127.0.0.1:8333"}},
		{"EnvRegionAndEndpoint", map[string]string{"AWS_REGION": "ap-south-1", "AWS_ENDPOINT_URL_S3": "https://s3.example", "AWS_ENDPOINT_URL": "https://other.example"}, "work", bucket.Config{AccessKey: "WORKKEY", SecretKey: "worksecret", SessionToken: "worktoken", Region: "ap-south-1", Endpoint: "https://s3.example"}},
		{"DefaultRegionVariable", map[string]string{"AWS_DEFAULT_REGION": "us-west-2"}, "", bucket.Config{AccessKey: "DEFAULTKEY", SecretKey: "defaultsecret", Region: "us-west-2"}},
		{"KeysInConfigFile", nil, "onlyconf", bucket.Config{AccessKey: "CONFKEY", SecretKey: "confsecret"}},
		{"OtherFiles", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/c", "AWS_CONFIG_FILE": "/nonexistent/f"}, "", bucket.Config{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			for _, k := range envKeys {
				t.Setenv(k, c.env[k])
			}
			got, err := DefaultCredentials(c.profile)
			if err != nil || got != c.want {
				t.Fatalf("DefaultCredentials(%q) = %+v, %v; want %+v", c.profile, got, err, c.want)
			}
		})
	}
	t.Run("MissingProfile", func(t *testing.T) {
		t.Setenv("HOME", home)
		for _, k := range envKeys {
			t.Setenv(k, "")
		}
		_, err := DefaultCredentials("nosuch")
		if !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), `profile "nosuch"`) {
			t.Fatalf("a missing profile: %v", err)
		}
		t.Setenv("AWS_PROFILE", "nosuch")
		if _, err := DefaultCredentials(""); !errors.Is(err, dotmesh.ErrNotFound) {
			t.Fatalf("a missing AWS_PROFILE: %v", err)
		}
	})
	t.Run("BrokenFile", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(bad, []byte("[unclosed\nkey = value\n"), 0o600)
		t.Setenv("HOME", home)
		for _, k := range envKeys {
			t.Setenv(k, "")
		}
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", bad)
		_, err := DefaultCredentials("")
		if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("a broken credentials file: %v, want a one-line error naming it", err)
		}
	})
}

func FuzzReadProfile(f *testing.F) {
	f.Add([]byte(credFile), []byte(confFile), "work")
	f.Add([]byte("[x"), []byte("a=b\n[profile y]\nregion=1"), "y")
	f.Fuzz(func(t *testing.T, cred, conf []byte, profile string) {
		cfg, found, err := readProfile("c", cred, "f", conf, profile)
		if err != nil && (found || cfg != bucket.Config{}) {
			t.Fatalf("readProfile failed (%v) but gave %+v, found %v", err, cfg, found)
		}
		if !found && cfg != (bucket.Config{}) {
			t.Fatalf("readProfile found no profile %q but gave %+v", profile, cfg)
		}
	})
}

func FuzzValidateBucketName(f *testing.F) {
	for _, s := range []string{"my-bucket", "a..b", "AB", "a.b-c", "-x-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateBucketName(s); err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidName) {
				t.Fatalf("ValidateBucketName(%q): %v", s, err)
			}
			return
		}
		if len(s) < 3 || len(s) > 63 || strings.ToLower(s) != s || strings.Contains(s, "/") {
			t.Fatalf("ValidateBucketName accepted %q", s)
		}
	})
}
