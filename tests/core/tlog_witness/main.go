// Command tlog_witness checks Stillroom's checkpoints and proofs with Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog packages.
//
//	tlog_witness checkpoint VKEY NOTE            prints "origin size roothex"
//	tlog_witness inclusion VKEY PROOF            checks a c2sp.org/tlog-proof@v1 file
//	tlog_witness consistency VKEY OLD NEW PROOF  checks a consistency proof between two checkpoints
//	tlog_witness roots LEAVES                    reads base64 leaf data, one a line; prints the root
//	                                             after each leaf, then every stored hash
//
// It exits 1 with a line starting "FAIL" when a check fails.
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func read(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("read %s: %v", path, err)
	}
	return data
}

func decodeHash(text string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != tlog.HashSize {
		fail("not a base64 hash: %q", text)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func openCheckpoint(vkeyPath string, msg []byte) (string, tlog.Tree) {
	verifier, err := note.NewVerifier(strings.TrimSpace(string(read(vkeyPath))))
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("note: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint text has %d lines", len(lines))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	return lines[0], tlog.Tree{N: size, Hash: decodeHash(lines[2])}
}

func inclusion(vkeyPath, proofPath string) {
	text := string(read(proofPath))
	head, checkpoint, found := strings.Cut(text, "\n\n")
	if !found {
		fail("proof has no blank line")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" || len(lines) < 3 || !strings.HasPrefix(lines[1], "extra ") {
		fail("proof header")
	}
	extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
	if err != nil {
		fail("extra: %v", err)
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[2], "index "), 10, 64)
	if err != nil {
		fail("index: %v", err)
	}
	var proof tlog.RecordProof
	for _, line := range lines[3:] {
		proof = append(proof, decodeHash(line))
	}
	_, tree := openCheckpoint(vkeyPath, []byte(checkpoint))
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(extra)); err != nil {
		fail("inclusion of %d in %d: %v", index, tree.N, err)
	}
	fmt.Printf("ok inclusion %d %d\n", index, tree.N)
}

func consistency(vkeyPath, oldPath, newPath, proofPath string) {
	_, old := openCheckpoint(vkeyPath, read(oldPath))
	_, tree := openCheckpoint(vkeyPath, read(newPath))
	lines := strings.Split(strings.TrimRight(string(read(proofPath)), "\n"), "\n")
	var proof tlog.TreeProof
	for _, line := range lines[3:] {
		proof = append(proof, decodeHash(line))
	}
	if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("consistency %d -> %d: %v", old.N, tree.N, err)
	}
	fmt.Printf("ok consistency %d %d\n", old.N, tree.N)
}

func roots(leavesPath string) {
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			out[i] = stored[index]
		}
		return out, nil
	})
	scanner := bufio.NewScanner(strings.NewReader(string(read(leavesPath))))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	n := int64(0)
	for scanner.Scan() {
		data, err := base64.StdEncoding.DecodeString(scanner.Text())
		if err != nil {
			fail("leaf %d: %v", n, err)
		}
		hashes, err := tlog.StoredHashes(n, data, reader)
		if err != nil {
			fail("stored hashes %d: %v", n, err)
		}
		stored = append(stored, hashes...)
		n++
		root, err := tlog.TreeHash(n, reader)
		if err != nil {
			fail("tree hash %d: %v", n, err)
		}
		fmt.Printf("root %d %s\n", n, base64.StdEncoding.EncodeToString(root[:]))
	}
	for i, h := range stored {
		fmt.Printf("stored %d %s\n", i, base64.StdEncoding.EncodeToString(h[:]))
	}
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: tlog_witness checkpoint|inclusion|consistency|roots ARGS")
	}
	switch os.Args[1] {
	case "checkpoint":
		origin, tree := openCheckpoint(os.Args[2], read(os.Args[3]))
		fmt.Printf("%s %d %x\n", origin, tree.N, tree.Hash[:])
	case "inclusion":
		inclusion(os.Args[2], os.Args[3])
	case "consistency":
		consistency(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	case "roots":
		roots(os.Args[2])
	default:
		fail("unknown mode %s", os.Args[1])
	}
}
