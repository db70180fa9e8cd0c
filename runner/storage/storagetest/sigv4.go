package storagetest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// authError is an S3 error code and message for a refused request.
type authError struct{ code, msg string }

func (e *authError) Error() string { return e.code + ": " + e.msg }

// verifySignature checks an AWS Signature V4 Authorization header: it signs
// a copy of the request holding only the headers the client signed, with
// the server's secret, and compares the signatures.
func verifySignature(r *http.Request, accessKey, secretKey string) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return &authError{"AccessDenied", "anonymous access is not allowed"}
	}
	fields, err := parseAuthorization(auth)
	if err != nil {
		return &authError{"AccessDenied", err.Error()}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 {
		return &authError{"AuthorizationHeaderMalformed", "credential scope " + fields["Credential"]}
	}
	if scope[0] != accessKey {
		return &authError{"InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	}
	region, service := scope[2], scope[3]
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return &authError{"AccessDenied", "missing or bad X-Amz-Date"}
	}

	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return err
	}
	req.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := signer.SignHTTP(context.Background(), creds, req, r.Header.Get("X-Amz-Content-Sha256"), service, region, date); err != nil {
		return err
	}
	want, err := parseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if want["Signature"] != fields["Signature"] {
		return &authError{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}
	return nil
}

// parseAuthorization splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
func parseAuthorization(h string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, fmt.Errorf("unsupported authorization scheme")
	}
	out := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("malformed authorization field %q", part)
		}
		out[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if out[k] == "" {
			return nil, fmt.Errorf("authorization header lacks %s", k)
		}
	}
	return out, nil
}
