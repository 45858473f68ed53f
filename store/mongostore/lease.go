package mongostore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The lease is one document, {_id: "writer"}: a process may write while it
// owns an unexpired lease. It is taken with one conditional upsert (free,
// expired, or already ours), so two processes racing for it cannot both
// win: the loser's upsert collides on _id. Times are the writers' clocks
// (BSON dates, milliseconds).

const leaseID = "writer"

type leaseDoc struct {
	Owner    string    `bson:"owner"`
	Host     string    `bson:"host"`
	PID      int       `bson:"pid"`
	Expires  time.Time `bson:"expires"`
	Acquired time.Time `bson:"acquired"`
}

// acquire takes the lease, or returns ErrLeased naming its holder.
func (s *Store) acquire(ctx context.Context) error {
	host, _ := os.Hostname()
	now := time.Now()
	filter := bson.D{{Key: "_id", Value: leaseID}, {Key: "$or", Value: bson.A{
		bson.D{{Key: "owner", Value: s.owner}},
		bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: now}}}},
	}}}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "owner", Value: s.owner}, {Key: "host", Value: host}, {Key: "pid", Value: os.Getpid()},
		{Key: "expires", Value: now.Add(s.opts.LeaseTTL)}, {Key: "acquired", Value: now},
	}}}
	_, err := s.lease.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if err == nil {
		s.leaseTill = s.safeUntil(now)
		return nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("take the lease: %w", err)
	}
	var held leaseDoc
	if rerr := s.lease.FindOne(ctx, bson.D{{Key: "_id", Value: leaseID}}).Decode(&held); rerr != nil {
		return fmt.Errorf("%w (and reading it failed: %v)", ErrLeased, rerr)
	}
	return fmt.Errorf("%w: pid %d on host %s has written database %s since %s; its lease runs until %s and "+
		"expires %s after that process stops renewing it (stop it, or wait that long if it died)",
		ErrLeased, held.PID, held.Host, s.db.Name(), held.Acquired.Format(time.RFC3339),
		held.Expires.Format(time.RFC3339Nano), s.opts.LeaseTTL)
}

// safeUntil is when writes stop if the renewal started at t is the last
// one: two thirds of the TTL, so a renewal may fail once and the margin to
// expiry covers clock skew and a slow insert.
func (s *Store) safeUntil(t time.Time) time.Time { return t.Add(s.opts.LeaseTTL * 2 / 3) }

// renew extends our lease and returns the new safeUntil; ErrLeaseLost when
// it is someone else's now.
func (s *Store) renew(ctx context.Context) (time.Time, error) {
	now := time.Now()
	res, err := s.lease.UpdateOne(ctx, bson.D{{Key: "_id", Value: leaseID}, {Key: "owner", Value: s.owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: now.Add(s.opts.LeaseTTL)}}}})
	if err != nil {
		return time.Time{}, fmt.Errorf("renew the lease: %w", err)
	}
	if res.MatchedCount == 0 {
		var held leaseDoc
		_ = s.lease.FindOne(ctx, bson.D{{Key: "_id", Value: leaseID}}).Decode(&held)
		return time.Time{}, fmt.Errorf("%w (now held by pid %d on host %s)", ErrLeaseLost, held.PID, held.Host)
	}
	return s.safeUntil(now), nil
}

// renewer renews the lease every LeaseTTL/3 until Close.
func (s *Store) renewer() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := s.opCtx()
		till, err := s.renew(ctx)
		cancel()
		s.mu.Lock()
		switch {
		case errors.Is(err, ErrLeaseLost):
			s.lost = true
			s.failLocked(err)
		case err != nil:
			s.log.Warn("lease renewal failed; writes stop if it keeps failing", "err", err)
		case till.After(s.leaseTill):
			s.leaseTill = till
		}
		s.mu.Unlock()
	}
}

// release gives the lease up, so that the next owner need not wait for it
// to expire.
func (s *Store) release() {
	ctx, cancel := s.opCtx()
	defer cancel()
	if _, err := s.lease.DeleteOne(ctx, bson.D{{Key: "_id", Value: leaseID}, {Key: "owner", Value: s.owner}}); err != nil {
		s.log.Warn("could not release the lease (it expires by itself)", "err", err)
	}
}
