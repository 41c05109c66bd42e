package report

import (
	"math"
	"sort"
)

// Latency summarises how long something took over the week's pull requests.
type Latency struct {
	MedianHours float64 `json:"median_hours"`
	P90Hours    float64 `json:"p90_hours"` // nearest rank: 9 in 10 took no longer
	Samples     int     `json:"samples"`
}

// ReviewTimes are the review latencies: from a pull request's creation to
// its first review (an approval or a change request by anyone but the
// author) and to the moment its required approvals were all in, over the
// pull requests whose first review or approval fell in the week.
type ReviewTimes struct {
	FirstReview Latency `json:"first_review"`
	Approval    Latency `json:"approval"`
}

type latencySamples struct{ firstReview, approval []float64 }

func (b *builder) samples(team string) *latencySamples {
	l := b.latency[team]
	if l == nil {
		l = &latencySamples{}
		b.latency[team] = l
	}
	return l
}

func latencyOf(xs []float64) Latency {
	return Latency{MedianHours: median(xs), P90Hours: percentile(xs, 0.9), Samples: len(xs)}
}

// percentile is the nearest-rank percentile: the smallest sample such that
// at least p of the samples are no larger.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return round1(s[i])
}
