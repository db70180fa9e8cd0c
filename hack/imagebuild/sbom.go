package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// sbom collects what an image holds, as SPDX 2.3 packages: each Debian
// package (with the sha256 of its .deb and the files kept), each Go module
// linked into a binary (from the binary's build information), and each
// other file's package (ONNX Runtime from npm).
type sbom struct {
	cfg      *Config
	packages []spdxPackage
	ids      map[string]int
}

func newSBOM(c *Config) *sbom { return &sbom{cfg: c, ids: map[string]int{}} }

type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string         `json:"SPDXID"`
	Name             string         `json:"name"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	Supplier         string         `json:"supplier,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	Homepage         string         `json:"homepage,omitempty"`
	SourceInfo       string         `json:"sourceInfo,omitempty"`
	PrimaryPurpose   string         `json:"primaryPackagePurpose,omitempty"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	LicenseConcluded string         `json:"licenseConcluded"`
	LicenseDeclared  string         `json:"licenseDeclared"`
	CopyrightText    string         `json:"copyrightText"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func (s *sbom) id(kind, name string) string {
	base := "SPDXRef-" + kind + "-" + idUnsafe.ReplaceAllString(name, "-")
	s.ids[base]++
	if n := s.ids[base]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

func purl(ref spdxRef) []spdxRef { return []spdxRef{ref} }

func purlRef(locator string) spdxRef {
	return spdxRef{Category: "PACKAGE-MANAGER", Type: "purl", Locator: locator}
}

func (s *sbom) addDeb(d *deb) {
	p := spdxPackage{
		SPDXID: s.id("deb", d.Package), Name: d.Package, VersionInfo: d.Version,
		Supplier: "Organization: Debian", DownloadLocation: "NOASSERTION", Homepage: d.Homepage,
		Checksums:        []spdxChecksum{{"SHA256", d.SHA256}},
		LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
		ExternalRefs: purl(purlRef(fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s&distro=debian-12",
			d.Package, url.PathEscape(d.Version), d.Architecture))),
		Comment: fmt.Sprintf("%s; files kept: %s", d.File, strings.Join(d.Files, " ")),
	}
	if d.Source != "" {
		p.SourceInfo = "built from Debian source package " + d.Source
	}
	s.packages = append(s.packages, p)
}

// addFile records a file's package: a Go binary's modules, or the
// package the description names.
func (s *sbom) addFile(f FileSpec) error {
	sum, err := fileSHA256(f.Src)
	if err != nil {
		return err
	}
	if info, err := buildinfo.ReadFile(f.Src); err == nil {
		main := spdxPackage{
			SPDXID: s.id("go", info.Main.Path), Name: info.Main.Path, VersionInfo: info.Main.Version,
			DownloadLocation: "NOASSERTION", PrimaryPurpose: "APPLICATION",
			Checksums:        []spdxChecksum{{"SHA256", sum}},
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			Comment: fmt.Sprintf("%s, built with %s", f.Dst, info.GoVersion),
		}
		if f.Package != nil {
			if f.Package.Version != "" {
				main.VersionInfo = f.Package.Version
			}
			if f.Package.License != "" {
				main.LicenseDeclared = f.Package.License
			}
		}
		main.ExternalRefs = purl(purlRef("pkg:golang/" + info.Main.Path + "@" + main.VersionInfo))
		s.packages = append(s.packages, main)
		s.packages = append(s.packages, spdxPackage{
			SPDXID: s.id("go", "stdlib-"+f.Dst), Name: "stdlib", VersionInfo: strings.TrimPrefix(info.GoVersion, "go"),
			DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "BSD-3-Clause", CopyrightText: "NOASSERTION",
			ExternalRefs: purl(purlRef("pkg:golang/stdlib@" + strings.TrimPrefix(info.GoVersion, "go"))),
			Comment:      "the Go standard library linked into " + f.Dst,
		})
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			p := spdxPackage{
				SPDXID: s.id("go", m.Path), Name: m.Path, VersionInfo: m.Version, DownloadLocation: "NOASSERTION",
				LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
				ExternalRefs: purl(purlRef("pkg:golang/" + m.Path + "@" + m.Version)),
				Comment:      "linked into " + f.Dst,
			}
			if m.Sum != "" {
				p.Comment += "; go.sum " + m.Sum
			}
			s.packages = append(s.packages, p)
		}
		return nil
	}
	if f.Package == nil {
		return fmt.Errorf("%s is not a Go binary: name its package for the SBOM", f.Src)
	}
	lic := f.Package.License
	if lic == "" {
		lic = "NOASSERTION"
	}
	p := spdxPackage{
		SPDXID: s.id("file", f.Package.Name), Name: f.Package.Name, VersionInfo: f.Package.Version,
		DownloadLocation: "NOASSERTION", Homepage: f.Package.Homepage,
		Checksums:        []spdxChecksum{{"SHA256", sum}},
		LicenseConcluded: "NOASSERTION", LicenseDeclared: lic, CopyrightText: "NOASSERTION",
		Comment: "provides " + f.Dst + " (the checksum is that file's)",
	}
	if f.Package.PURL != "" {
		p.ExternalRefs = purl(purlRef(f.Package.PURL))
	}
	s.packages = append(s.packages, p)
	return nil
}

// document is the SPDX document of the image with this manifest digest;
// its namespace and time derive from the digest and the epoch only.
func (s *sbom) document(digest string, created time.Time) spdxDoc {
	hexDigest := strings.TrimPrefix(digest, "sha256:")
	repo := s.cfg.Repository
	name := repo[strings.LastIndex(repo, "/")+1:]
	img := spdxPackage{
		SPDXID: "SPDXRef-Image", Name: repo, VersionInfo: s.cfg.Tag, DownloadLocation: "NOASSERTION",
		PrimaryPurpose: "CONTAINER", Checksums: []spdxChecksum{{"SHA256", hexDigest}},
		LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
		ExternalRefs: purl(purlRef(fmt.Sprintf("pkg:oci/%s@%s?repository_url=%s&tag=%s",
			name, url.QueryEscape(digest), url.QueryEscape(repo), url.QueryEscape(s.cfg.Tag)))),
		Comment: "the image manifest's digest",
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              repo + ":" + s.cfg.Tag,
		DocumentNamespace: "https://kompress.dev/spdx/" + name + "/sha256-" + hexDigest,
		CreationInfo:      spdxCreationInfo{Created: created.UTC().Format(time.RFC3339), Creators: []string{"Tool: kompress-imagebuild"}},
		Packages:          append([]spdxPackage{img}, s.packages...),
	}
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"})
	ids := make([]string, 0, len(s.packages))
	for _, p := range s.packages {
		ids = append(ids, p.SPDXID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Image", "CONTAINS", id})
	}
	return doc
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
