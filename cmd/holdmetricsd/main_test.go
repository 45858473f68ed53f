//go:build unix

// Unix only: TestMainTLSAndSignal stops the daemon with a SIGTERM sent to
// itself, which Windows has no way to do (os.Process.Signal only kills there).

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// selfSigned writes a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestMainTLSAndSignal runs the real main wiring with TLS on both
// listeners, then stops it with SIGTERM and expects a clean (nil) return.
func TestMainTLSAndSignal(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- realMain([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--data-dir", filepath.Join(dir, "data"),
			"--tls-cert", cert, "--tls-key", key, "--log-level", "error"}, io.Discard)
	}()
	tlsCfg := &tls.Config{InsecureSkipVerify: true} // self-signed, test only
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 5 * time.Second}
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = client.Get("https://" + httpAddr + "/readyz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	// A plain-HTTP request to the TLS listener gets a 400, not an answer.
	if r, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP answered on a TLS listener")
		}
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := pohpb.NewHoldMetricsQueryClient(conn).HealthCheck(ctx, &emptypb.Empty{})
	if err != nil || !h.Ok {
		t.Fatalf("gRPC over TLS: %v %v", h, err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("realMain after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no clean stop after SIGTERM")
	}
}
