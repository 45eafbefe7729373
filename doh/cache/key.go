package cache

// AppendKey appends the cache key of a question to dst: the name in wire
// form with ASCII letters lowered, then type, class and the DO and CD bits.
// Names differing only in case share a key; everything else that changes an
// answer does not.
func AppendKey(dst, wireName []byte, qtype, qclass uint16, do, cd bool) []byte {
	for _, c := range wireName {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	var flags byte
	if do {
		flags |= 1
	}
	if cd {
		flags |= 2
	}
	return append(dst, byte(qtype>>8), byte(qtype), byte(qclass>>8), byte(qclass), flags)
}
