package report

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Week is an ISO 8601 week (Monday to Sunday) in a time zone.
type Week struct {
	Year int
	Num  int
	Loc  *time.Location
}

var weekRE = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)

// ParseWeek reads "YYYY-Www".
func ParseWeek(s string, loc *time.Location) (Week, error) {
	m := weekRE.FindStringSubmatch(s)
	if m == nil {
		return Week{}, fmt.Errorf("week %q: want YYYY-Www, e.g. 2026-W48", s)
	}
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	w := Week{Year: y, Num: n, Loc: locOrUTC(loc)}
	if n < 1 || n > 53 {
		return Week{}, fmt.Errorf("week %q: week number must be 01 to 53", s)
	}
	// Week 53 exists only in some years: it must round-trip.
	if got := WeekOf(w.Start(), w.Loc); got != w {
		return Week{}, fmt.Errorf("week %q: %d has no week %02d", s, y, n)
	}
	return w, nil
}

// WeekOf returns the ISO week containing t, in loc.
func WeekOf(t time.Time, loc *time.Location) Week {
	loc = locOrUTC(loc)
	y, n := t.In(loc).ISOWeek()
	return Week{Year: y, Num: n, Loc: loc}
}

// LastComplete returns the last ISO week that ended before now.
func LastComplete(now time.Time, loc *time.Location) Week {
	return WeekOf(now, loc).Prev()
}

// Start is Monday 00:00 of the week, in its zone.
func (w Week) Start() time.Time {
	loc := locOrUTC(w.Loc)
	// 4 January is always in week 1.
	jan4 := time.Date(w.Year, 1, 4, 0, 0, 0, 0, loc)
	offset := (int(jan4.Weekday()) + 6) % 7 // days since Monday
	monday1 := jan4.AddDate(0, 0, -offset)
	return monday1.AddDate(0, 0, 7*(w.Num-1))
}

// End is the following Monday 00:00 (exclusive).
func (w Week) End() time.Time { return w.Start().AddDate(0, 0, 7) }

// Prev is the week before.
func (w Week) Prev() Week { return WeekOf(w.Start().AddDate(0, 0, -1), w.Loc) }

func (w Week) String() string { return fmt.Sprintf("%04d-W%02d", w.Year, w.Num) }

func locOrUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
