// SPDX-License-Identifier: GPL-2.0
// typed: a socket filter that keeps typed per-flow stats, for bpfmapd's BTF tests.
//
// Attached with SO_ATTACH_BPF to a UDP socket on 127.0.0.1, it runs once per datagram
// (skb->data is at the UDP header; skb->len = UDP header + payload) and lets it through.
// Compiled with -g, so every map carries BTF for its key and value:
//   flows       HASH struct flow_key -> struct flow_stats: per-flow counters; comm is the
//               first 16 bytes of the flow's first datagram (the test's tag, NUL-padded)
//   flow_pcpu   PERCPU_HASH __u16 (destination port) -> struct pcpu_stats
//   kinds       ARRAY[4] of struct all_kinds: not written by the program; one value type
//               holding every BTF kind (ints of each size and sign, char[], arrays, nested
//               struct, union, enum, bitfields, bool, pointer, typedef, modifiers, padding)
#include <linux/bpf.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum verdict { VERDICT_NONE = 0, VERDICT_SMALL = 1, VERDICT_BIG = 2 };

struct flow_key {
	__u32 saddr;		/* network byte order, as on the wire */
	__u32 daddr;
	__u16 sport;		/* host byte order */
	__u16 dport;
	__u8 proto;		/* then 3 bytes of padding */
};

struct len_range {
	__u16 min;
	__u16 max;
};

struct flow_stats {
	char comm[16];
	__u64 packets;
	__u64 bytes;		/* skb->len: UDP header + payload */
	struct len_range sizes;
	enum verdict last;	/* BIG when the last skb->len was over 1000 */
	__u32 is_udp : 1;
	__u32 len_class : 3;	/* min(last skb->len / 256, 7) */
	__u32 reserved : 28;
	_Bool seen;
	__s16 delta;		/* sizes.min - last skb->len (0 or negative) */
};

struct pcpu_stats {
	__u64 packets;
	__u64 bytes;
};

typedef __u32 obj_id_t;

union num_or_bytes {
	__u32 num;
	__u8 bytes[4];
};

struct inner {
	__u16 a;
	__s8 b;
};

struct all_kinds {
	__u8 u8v;
	__s8 s8v;
	__u16 u16v;
	__s16 s16v;
	__u32 u32v;
	__s32 s32v;
	__u64 u64v;
	__s64 s64v;
	char name[8];
	__u16 arr[3];
	struct inner in;
	union num_or_bytes u;
	enum verdict v;
	__u8 flag_a : 1;
	__u8 flag_b : 2;
	__s8 sflag : 3;
	_Bool ok;
	void *ptr;
	obj_id_t id;
	__u8 pad_before;	/* 7 bytes of padding follow */
	__u64 after_pad;
	const volatile __u32 cv;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct pcpu_stats);
} flow_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct all_kinds);
} kinds SEC(".maps");

SEC("socket")
int track_flows(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct flow_key key;
	struct flow_stats init;
	struct flow_stats *st;
	struct pcpu_stats *pc, pinit = {};
	struct udphdr udp;
	__u32 addrs[2];
	__u16 dport;

	__builtin_memset(&key, 0, sizeof(key));
	if (bpf_skb_load_bytes_relative(skb, 12, addrs, sizeof(addrs), BPF_HDR_START_NET))
		return len;
	if (bpf_skb_load_bytes(skb, 0, &udp, sizeof(udp)))
		return len;
	key.saddr = addrs[0];
	key.daddr = addrs[1];
	key.sport = bpf_ntohs(udp.source);
	key.dport = bpf_ntohs(udp.dest);
	key.proto = 17;

	st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		__builtin_memset(&init, 0, sizeof(init));
		bpf_skb_load_bytes(skb, sizeof(udp), init.comm, sizeof(init.comm));
		init.comm[15] = 0;
		init.sizes.min = len;
		init.sizes.max = len;
		bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&flows, &key);
		if (!st)
			return len;
	}
	__sync_fetch_and_add(&st->packets, 1);
	__sync_fetch_and_add(&st->bytes, len);
	if (len < st->sizes.min)
		st->sizes.min = len;
	if (len > st->sizes.max)
		st->sizes.max = len;
	st->last = len > 1000 ? VERDICT_BIG : VERDICT_SMALL;
	st->is_udp = 1;
	st->len_class = len / 256 > 7 ? 7 : len / 256;
	st->seen = 1;
	st->delta = (__s16)((int)st->sizes.min - (int)len);

	dport = key.dport;
	pc = bpf_map_lookup_elem(&flow_pcpu, &dport);
	if (!pc) {
		bpf_map_update_elem(&flow_pcpu, &dport, &pinit, BPF_NOEXIST);
		pc = bpf_map_lookup_elem(&flow_pcpu, &dport);
		if (!pc)
			return len;
	}
	pc->packets += 1;
	pc->bytes += len;
	return len;
}

char LICENSE[] SEC("license") = "GPL";
