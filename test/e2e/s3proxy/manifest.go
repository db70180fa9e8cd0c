package s3proxy

import (
	"fmt"
	"net/url"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/runner/storage/storagetest"
)

// Manifest points every s3:// URI of a YAML manifest at the proxy (path
// style, the region kept or storagetest's): what a user edits in a sample
// before applying it to their cluster.
func (p *Proxy) Manifest(data []byte) ([]byte, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		var err error
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if x[k], err = walk(e); err != nil {
					return nil, err
				}
			}
		case []any:
			for i, e := range x {
				if x[i], err = walk(e); err != nil {
					return nil, err
				}
			}
		case string:
			if strings.HasPrefix(x, "s3://") {
				u, err := url.Parse(x)
				if err != nil {
					return nil, fmt.Errorf("manifest: %w", err)
				}
				q := u.Query()
				q.Set("endpoint", p.Endpoint)
				q.Set("use_path_style", "true")
				if q.Get("region") == "" {
					q.Set("region", storagetest.Region)
				}
				u.RawQuery = q.Encode()
				return u.String(), nil
			}
		}
		return v, nil
	}
	out, err := walk(obj)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(out)
}
