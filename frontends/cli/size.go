package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// sizeFlag is a byte count given as bytes or with a binary unit: 10G,
// 512M, 1.5T, 10GiB, 64MB (K, M, G, T = 1024^1..4; B is optional).
type sizeFlag int64

func (s *sizeFlag) String() string {
	if *s == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *sizeFlag) Type() string { return "SIZE" }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseSize parses a sizeFlag value.
func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	num := strings.TrimRight(t, "KMGTIB")
	unit := strings.TrimSpace(t[len(num):])
	num = strings.TrimSpace(num)
	mult := map[string]float64{
		"": 1, "B": 1,
		"K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10,
		"M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30,
		"T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40,
	}[unit]
	f, err := strconv.ParseFloat(num, 64)
	digits := strings.Trim(num, "0123456789.") == "" && strings.Count(num, ".") <= 1
	if mult == 0 || err != nil || !digits || f <= 0 {
		return 0, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("size %q: give a positive number of bytes, optionally with a unit K, M, G or T (powers of 1024), like 10G or 512M", v))
	}
	b := f * mult
	if b < 1 { // "0.1" is 0 bytes, which callers read as "no size given"
		return 0, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("size %q is less than one byte", v))
	}
	if b > math.MaxInt64/2 {
		return 0, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("size %q is too large", v))
	}
	return int64(b), nil
}
