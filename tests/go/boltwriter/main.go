// Command boltwriter writes a bbolt database the way upstream Terway's daemon writes its pod
// state, for tests/daemon/test_migration.py to read with terway/daemon/boltdb.py.
//
// Usage: boltwriter <db path> <spec.json>. The spec names buckets and what goes in them:
//
//	{"page_size": 0,
//	 "buckets": {"relation": {"kind": "pod-resources", "entries": {"ns/name": {...}}},
//	             "pods": {"kind": "pod-info", "entries": {"ns/name": {"Pod": {...}}}},
//	             "other": {"kind": "raw", "entries": {"k": "v"}, "buckets": {...}},
//	             ...},
//	 "deleted": {"relation": ["ns/name"]}}
//
// "pod-resources" entries are decoded into upstream's PodResources (types/daemon/res.go: the
// value of ResRelation.db's bucket "relation") and "pod-info" entries into pkg/k8s's
// storageItem (pod.db's bucket "pods"), then encoded with encoding/json as upstream's
// serializers do, so every field upstream stores is there in upstream's spelling (zero values,
// null pointers, net.IP and time.Time as Go writes them). "raw" values are stored as given and
// may hold nested buckets. As upstream's DiskStorage, the bucket is made in its own
// transaction and every Put and Delete is a transaction of its own; "deleted" keys are removed
// after all writes, leaving freed pages behind. Exit status 1 on any error (on stderr).
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The stored types, declared after upstream's schema (field names, JSON tags and Go types
// decide the bytes; upstream's own methods are not needed).
type ipSet struct {
	IPv4 net.IP
	IPv6 net.IP
}

type podEipInfo struct {
	PodEip                   bool
	PodEipID                 string
	PodEipIP                 string
	PodEipBandWidth          int
	PodEipChargeType         string
	PodEipISP                string
	PodEipPoolID             string
	PodEipBandwidthPackageID string
}

type podInfo struct {
	Name            string
	Namespace       string
	TcIngress       uint64
	TcEgress        uint64
	PodNetworkType  string
	PodIP           string
	PodIPs          ipSet
	SandboxExited   bool
	EipInfo         podEipInfo
	IPStickTime     time.Duration
	PodENI          bool
	PodUID          string
	NetworkPriority string
	ERdma           bool
	CreateTime      time.Time
}

type extraEipInfo struct {
	Delete         bool   `json:"delete"`
	AssociateENI   string `json:"associate_eni"`
	AssociateENIIP net.IP `json:"associate_eniip"`
}

type resourceItem struct {
	Type         string        `json:"type"`
	ID           string        `json:"id"`
	ExtraEipInfo *extraEipInfo `json:"extra_eip_info"`
	ENIID        string        `json:"eni_id"`
	ENIMAC       string        `json:"eni_mac"`
	IPv4         string        `json:"ipv4"`
	IPv6         string        `json:"ipv6"`
}

type podResources struct {
	Resources   []resourceItem
	PodInfo     *podInfo
	NetNs       *string
	ContainerID *string
	NetConf     string
}

type storageItem struct {
	Pod *podInfo
}

type bucketSpec struct {
	Kind    string                     `json:"kind"`
	Entries map[string]json.RawMessage `json:"entries"`
	Buckets map[string]bucketSpec      `json:"buckets"`
}

type spec struct {
	PageSize int                   `json:"page_size"`
	Buckets  map[string]bucketSpec `json:"buckets"`
	Deleted  map[string][]string   `json:"deleted"`
}

// encode turns one spec entry into the bytes upstream would store for it.
func encode(kind string, raw json.RawMessage) ([]byte, error) {
	switch kind {
	case "pod-resources":
		var v podResources
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return json.Marshal(v)
	case "pod-info":
		var v storageItem
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return json.Marshal(v)
	case "raw", "":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("unknown bucket kind %q", kind)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// write fills the bucket at path (made first) with its entries, one transaction per Put.
func write(db *bolt.DB, path []string, b bucketSpec) error {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := bucketAt(tx, path, true)
		return err
	})
	if err != nil {
		return err
	}
	for _, key := range sortedKeys(b.Entries) {
		value, err := encode(b.Kind, b.Entries[key])
		if err != nil {
			return fmt.Errorf("%v/%s: %w", path, key, err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			bk, err := bucketAt(tx, path, false)
			if err != nil {
				return err
			}
			return bk.Put([]byte(key), value)
		})
		if err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(b.Buckets) {
		if err := write(db, append(append([]string{}, path...), name), b.Buckets[name]); err != nil {
			return err
		}
	}
	return nil
}

func bucketAt(tx *bolt.Tx, path []string, create bool) (*bolt.Bucket, error) {
	var b *bolt.Bucket
	for i, name := range path {
		var err error
		switch {
		case i == 0 && create:
			b, err = tx.CreateBucketIfNotExists([]byte(name))
		case i == 0:
			b = tx.Bucket([]byte(name))
		case create:
			b, err = b.CreateBucketIfNotExists([]byte(name))
		default:
			b = b.Bucket([]byte(name))
		}
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, fmt.Errorf("no bucket %v", path[:i+1])
		}
	}
	return b, nil
}

func run(dbPath, specPath string) error {
	text, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var s spec
	if err := json.Unmarshal(text, &s); err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{PageSize: s.PageSize, NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	for _, name := range sortedKeys(s.Buckets) {
		if err := write(db, []string{name}, s.Buckets[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(s.Deleted) {
		for _, key := range s.Deleted[name] {
			err := db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(name))
				if b == nil {
					return fmt.Errorf("no bucket %s", name)
				}
				return b.Delete([]byte(key))
			})
			if err != nil {
				return err
			}
		}
	}
	return db.Sync()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: boltwriter <db path> <spec.json>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "boltwriter:", err)
		os.Exit(1)
	}
}
