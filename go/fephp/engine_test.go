package fephp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests run against a REAL php-fpm: TestMain starts php-fpm8.2 with a generated pool
// config in a temp dir (-F, -R when root, PHP_INI_SCAN_DIR= and -c tests/support/php.ini),
// unless FEPHP_FPM_ADDRESS names one already running.

var (
	fpmAddress string
	scriptsDir string
)

func repoPath(rel string) string {
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		panic(err)
	}
	return p
}

func startFPM() (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "fephp-go-fpm-")
	if err != nil {
		return "", nil, err
	}
	sock := filepath.Join(dir, "fpm.sock")
	user := ""
	if os.Geteuid() == 0 {
		user = "user = root\ngroup = root\n"
	}
	conf := fmt.Sprintf("[global]\nerror_log = %s\ndaemonize = no\n\n[www]\nlisten = %s\n%spm = static\n"+
		"pm.max_children = 2\nclear_env = no\n", filepath.Join(dir, "fpm.log"), sock, user)
	confPath := filepath.Join(dir, "php-fpm.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	bin := os.Getenv("FEPHP_PHP_FPM")
	if bin == "" {
		bin = "php-fpm8.2"
	}
	args := []string{"-F", "-y", confPath, "-c", repoPath("tests/support/php.ini")}
	if os.Geteuid() == 0 {
		args = append(args, "-R")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PHP_INI_SCAN_DIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return "unix:" + sock, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("php-fpm did not listen within 10 s")
}

func TestMain(m *testing.M) {
	scriptsDir = repoPath("tests/scripts")
	fpmAddress = os.Getenv("FEPHP_FPM_ADDRESS")
	stop := func() {}
	if fpmAddress == "" {
		var err error
		fpmAddress, stop, err = startFPM()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fephp tests need php-fpm8.2:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func config(fpm string) string {
	return fmt.Sprintf("[server]\ndocument_root = %q\n\n[php]\nuse_fpm = true\nfpm_socket = %q\nworker_pool_size = 4\n",
		scriptsDir, fpm)
}

func newServer(t *testing.T, fpm string) *httptest.Server {
	t.Helper()
	engine, err := NewEngine(config(fpm))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(engine)
	t.Cleanup(func() {
		srv.Close()
		engine.Close()
	})
	return srv
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHelloWorld(t *testing.T) {
	if Version() == "" {
		t.Fatal("empty version")
	}
	srv := newServer(t, fpmAddress)
	for i := 0; i < 3; i++ {
		resp, body := get(t, srv.URL+"/hello.php")
		if resp.StatusCode != 200 || body != "Hello, world!\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=UTF-8" {
			t.Fatalf("content-type %q", ct)
		}
	}
}

func TestPostAndRequestHeaders(t *testing.T) {
	srv := newServer(t, fpmAddress)
	resp, err := http.PostForm(srv.URL+"/echo_request.php?a=1", url.Values{"name": {"Alice"}, "n": {"42"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"name":"Alice"`) || !strings.Contains(string(body), `"input_len":15`) || !strings.Contains(string(body), `"get":{"a":"1"}`) {
		t.Fatalf("echo: %s", body)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/server_vars.php?q=1", nil)
	req.Header.Set("X-Custom", "hello")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"HTTP_X_CUSTOM":"hello"`, `"QUERY_STRING":"q=1"`, `"REMOTE_ADDR":"127.0.0.1"`, `"REQUEST_METHOD":"GET"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %s in %s", want, body)
		}
	}
}

func TestResponseStatusAndHeaders(t *testing.T) {
	srv := newServer(t, fpmAddress)
	resp, body := get(t, srv.URL+"/status_headers.php")
	if resp.StatusCode != 418 || body != "teapot\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Multi %v", got)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("Set-Cookie %v", got)
	}
}

func TestStreams10MB(t *testing.T) {
	srv := newServer(t, fpmAddress)
	resp, err := http.Get(srv.URL + "/big_output.php?mb=10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 {
		t.Errorf("expected a streamed (chunked) response, got Content-Length %d", resp.ContentLength)
	}
	const pattern = "0123456789abcdef"
	buf := make([]byte, 64*1024)
	total := 0
	for {
		n, err := resp.Body.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != pattern[(total+i)%16] {
				t.Fatalf("corrupt byte at %d", total+i)
			}
		}
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != 10<<20 {
		t.Fatalf("got %d bytes", total)
	}
}

func TestFPMDownIs502(t *testing.T) {
	srv := newServer(t, "unix:/nonexistent/fephp-fpm.sock")
	resp, body := get(t, srv.URL+"/hello.php")
	if resp.StatusCode != 502 || body != "502 Bad Gateway\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestMissingScriptIs404(t *testing.T) {
	srv := newServer(t, fpmAddress)
	if resp, _ := get(t, srv.URL+"/missing.php"); resp.StatusCode != 404 {
		t.Fatalf("got %d", resp.StatusCode)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	_, err := NewEngine(fmt.Sprintf("[server]\ndocument_root = %q\n[php]\nuse_fpm = true\nworker_pool_size = 0\n", scriptsDir))
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != CodeConfig || !strings.Contains(fe.Message, "php.worker_pool_size") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewEngine("not toml ["); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestClosedEngineAnswers503(t *testing.T) {
	engine, err := NewEngine(config(fpmAddress))
	if err != nil {
		t.Fatal(err)
	}
	engine.Close()
	engine.Close() // idempotent
	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, httptest.NewRequest("GET", "/hello.php", nil))
	if rec.Code != 503 {
		t.Fatalf("got %d", rec.Code)
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := newServer(t, fpmAddress)
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			resp, err := http.Get(srv.URL + "/hello.php")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "Hello, world!\n" {
					err = fmt.Errorf("body %q", b)
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
