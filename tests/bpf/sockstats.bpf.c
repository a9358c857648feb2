// SPDX-License-Identifier: GPL-2.0
// sockstats: a socket filter that counts what it sees, for bpfmapd's end-to-end tests.
//
// Attached with SO_ATTACH_BPF to a UDP socket on 127.0.0.1, it runs once per datagram that
// reaches the socket and lets every packet through whole. It writes:
//   sock_counts  ARRAY[2] of u64: [0] packets, [1] bytes (skb->len: UDP header + payload)
//   sock_pcpu    PERCPU_ARRAY[2] of u64: the same, per CPU
//   sock_locked  HASH u32 -> { bpf_spin_lock; u64 }: not used by the program (socket filters
//                may not touch spin-locked maps); libbpf creates it with BTF so that tests
//                have a map whose value holds a bpf_spin_lock, for BPF_F_LOCK from userspace
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sock_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sock_pcpu SEC(".maps");

struct locked_count {
	struct bpf_spin_lock lock;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct locked_count);
} sock_locked SEC(".maps");

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u64 len = skb->len;
	__u32 key = 0;
	__u64 *v;

	v = bpf_map_lookup_elem(&sock_counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&sock_pcpu, &key);
	if (v)
		*v += 1;

	key = 1;
	v = bpf_map_lookup_elem(&sock_counts, &key);
	if (v)
		__sync_fetch_and_add(v, len);
	v = bpf_map_lookup_elem(&sock_pcpu, &key);
	if (v)
		*v += len;

	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
