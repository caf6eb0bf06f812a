// k8s-validate decodes Kubernetes manifests strictly into the API's Go types.
//
// Usage: k8s-validate [FILE...]   (no file, or "-": standard input)
//
// The input is one or more YAML streams of documents separated by "---" lines, as `helm
// template` writes them. Every non-empty document must be an object of a kind the scheme knows
// (the built-in API groups of k8s.io/api, plus KEDA's keda.sh/v1alpha1 from its own Go types),
// and must decode with the strict serializer: an unknown or duplicated field, a value of the
// wrong type (a string where an int goes, a malformed quantity) or an unknown kind is an error.
// A document that decodes is also encoded back and decoded again, so the object round-trips.
//
// It prints one line per document, "ok <apiVersion>/<kind> <name>" or "error <where>: <why>",
// and exits 1 if any document failed, 2 if the input could not be read.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := kedav1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}

type document struct {
	source string
	index  int
	body   []byte
}

func readDocuments(name string, in io.Reader) ([]document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var docs []document
	for index := 0; ; index++ {
		body, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		docs = append(docs, document{source: name, index: index, body: body})
	}
}

// isEmpty: a document holding only comments and blank lines (helm writes "# Source: ..." ones).
func isEmpty(body []byte) bool {
	for _, line := range strings.Split(string(body), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			return false
		}
	}
	return true
}

func validate(factory serializer.CodecFactory, scheme *runtime.Scheme, body []byte) (string, error) {
	// YAML to JSON first (sigs.k8s.io/yaml, strictly: duplicate keys are an error), then the
	// strict decoder on JSON.
	jsonBody, err := yaml.YAMLToJSONStrict(body)
	if err != nil {
		return "", err
	}
	if bytes.Equal(bytes.TrimSpace(jsonBody), []byte("null")) {
		return "", errors.New("not an object")
	}
	decoder := factory.UniversalDeserializer()
	object, gvk, err := decoder.Decode(jsonBody, nil, nil)
	if err != nil {
		return "", err
	}
	accessor, err := meta.Accessor(object)
	if err != nil {
		return "", err
	}
	if accessor.GetName() == "" {
		return "", fmt.Errorf("%s has no metadata.name", gvk.Kind)
	}
	// Round trip: what decoded must encode and decode to the same kind again.
	encoder := factory.LegacyCodec(gvk.GroupVersion())
	var buffer bytes.Buffer
	if err := encoder.Encode(object, &buffer); err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	if _, again, err := decoder.Decode(buffer.Bytes(), nil, nil); err != nil || *again != *gvk {
		return "", fmt.Errorf("round trip: %v (%v)", err, again)
	}
	if !scheme.Recognizes(*gvk) {
		return "", fmt.Errorf("unknown kind %s", gvk)
	}
	return fmt.Sprintf("%s/%s %s", gvk.GroupVersion().String(), gvk.Kind, accessor.GetName()), nil
}

func main() {
	scheme, err := newScheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheme:", err)
		os.Exit(2)
	}
	factory := serializer.NewCodecFactory(scheme, serializer.EnableStrict)

	names := os.Args[1:]
	if len(names) == 0 {
		names = []string{"-"}
	}
	var docs []document
	for _, name := range names {
		var in io.Reader = os.Stdin
		if name != "-" {
			file, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			defer file.Close()
			in = file
		}
		found, err := readDocuments(name, in)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		docs = append(docs, found...)
	}

	failed, checked := 0, 0
	for _, doc := range docs {
		if isEmpty(doc.body) {
			continue
		}
		checked++
		what, err := validate(factory, scheme, doc.body)
		if err != nil {
			failed++
			// One line per document, whatever the error's own line breaks.
			why := strings.Join(strings.Fields(err.Error()), " ")
			fmt.Printf("error %s#%d: %s\n", doc.source, doc.index, why)
			continue
		}
		fmt.Printf("ok %s\n", what)
	}
	if checked == 0 {
		fmt.Println("error: no documents")
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
