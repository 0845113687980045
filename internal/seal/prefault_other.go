//go:build !linux

package seal

func adviseHuge([]byte) {}
