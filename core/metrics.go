package core

import (
	"bytes"
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Histogram buckets. Durations: a minute to ten years. Scores (weight ×
// seconds): decades from 1 to 1e15.
var (
	durationBuckets = []float64{60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400,
		90 * 86400, 365 * 86400, 3 * 365 * 86400, 10 * 365 * 86400}
	scoreBuckets = prometheus.ExponentialBuckets(1, 10, 16)
)

// shardStats are a shard's metric counters. They are updated under the shard
// lock the record path already holds, so the hot path adds no atomics and no
// shared cache lines; Collect sums them across shards.
type shardStats struct {
	accepted uint64
	evicted  uint64
	durCount []uint64 // per bucket, not cumulative; last entry is +Inf
	durSum   float64
	scoCount []uint64
	scoSum   float64
}

// add folds o's counters into s.
func (s *shardStats) add(o *shardStats) {
	s.accepted += o.accepted
	s.evicted += o.evicted
	if o.durCount == nil {
		return
	}
	if s.durCount == nil {
		s.durCount = make([]uint64, len(durationBuckets)+1)
		s.scoCount = make([]uint64, len(scoreBuckets)+1)
	}
	for j, v := range o.durCount {
		s.durCount[j] += v
	}
	for j, v := range o.scoCount {
		s.scoCount[j] += v
	}
	s.durSum += o.durSum
	s.scoSum += o.scoSum
}

func (s *shardStats) observe(seconds int64, score float64) {
	if s.durCount == nil {
		s.durCount = make([]uint64, len(durationBuckets)+1)
		s.scoCount = make([]uint64, len(scoreBuckets)+1)
	}
	d := float64(seconds)
	s.durCount[bucket(durationBuckets, d)]++
	s.durSum += d
	s.scoCount[bucket(scoreBuckets, score)]++
	s.scoSum += score
}

// bucket is the index of the first upper bound >= v (len(bounds) for +Inf),
// as client_golang's histograms count; a plain loop beats sort.Search's
// closure for a dozen bounds.
func bucket(bounds []float64, v float64) int {
	for i, b := range bounds {
		if v <= b {
			return i
		}
	}
	return len(bounds)
}

// collector exposes an Aggregator's state. Metric names follow Prometheus
// conventions; no label ever carries a holder or token id.
type collector struct {
	a        *Aggregator
	rejected atomic.Uint64 // events that failed validation
	dropped  atomic.Uint64 // valid events rejected with their (strict) batch

	events, duration, score, holders, open, evictions *prometheus.Desc
}

func newCollector(a *Aggregator, labels prometheus.Labels) *collector {
	return &collector{
		a: a,
		events: prometheus.NewDesc("poh_hold_events_total",
			"Hold events received, by result: accepted; rejected (failed validation); dropped (valid, but in a "+
				"strict batch that another event failed).", []string{"result"}, labels),
		duration: prometheus.NewDesc("poh_hold_event_duration_seconds",
			"Duration of each closed hold (end - start).", nil, labels),
		score: prometheus.NewDesc("poh_hold_event_score",
			"Score (duration seconds x weight) of each closed hold.", nil, labels),
		holders: prometheus.NewDesc("poh_holders",
			"Holders currently tracked.", nil, labels),
		open: prometheus.NewDesc("poh_open_holds",
			"Holds currently open (no end yet).", nil, labels),
		evictions: prometheus.NewDesc("poh_gc_evictions_total",
			"Holders dropped by TTL garbage collection.", nil, labels),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.duration, c.score, c.holders, c.open, c.evictions} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var total shardStats
	var holders, open int64
	for i := range c.a.shards {
		sh := &c.a.shards[i]
		sh.mu.Lock()
		total.add(&sh.stats)
		holders += int64(sh.holders.n)
		open += sh.open
		sh.mu.Unlock()
	}
	if total.durCount == nil { // nothing observed yet: empty histograms
		total.durCount = make([]uint64, len(durationBuckets)+1)
		total.scoCount = make([]uint64, len(scoreBuckets)+1)
	}
	accepted, evicted := total.accepted, total.evicted
	durCount, scoCount, durSum, scoSum := total.durCount, total.scoCount, total.durSum, total.scoSum
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(accepted), "accepted")
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(c.rejected.Load()), "rejected")
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(c.dropped.Load()), "dropped")
	ch <- constHistogram(c.duration, durationBuckets, durCount, durSum)
	ch <- constHistogram(c.score, scoreBuckets, scoCount, scoSum)
	ch <- prometheus.MustNewConstMetric(c.holders, prometheus.GaugeValue, float64(holders))
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(open))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(evicted))
}

func constHistogram(d *prometheus.Desc, bounds []float64, counts []uint64, sum float64) prometheus.Metric {
	cum := make(map[float64]uint64, len(bounds))
	var total uint64
	for i, b := range bounds {
		total += counts[i]
		cum[b] = total
	}
	total += counts[len(bounds)]
	return prometheus.MustNewConstHistogram(d, total, sum, cum)
}

// MetricsText renders the aggregator's registry in the Prometheus text
// exposition format (version 0.0.4).
func (a *Aggregator) MetricsText() (string, error) {
	if a.gather == nil {
		return "", errors.New("metrics registerer is not a Gatherer; gather it where it is served")
	}
	return GatherText(a.gather)
}

// GatherText renders everything g gathers in the text exposition format.
func GatherText(g prometheus.Gatherer) (string, error) {
	mfs, err := g.Gather()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", err
		}
	}
	return buf.String(), nil
}
