package mongostore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// colls are a database's collections (see the package comment) and the
// reads that Store and Reader share.
type colls struct {
	recs, snaps, chunks, lease *mongo.Collection
}

func collsOf(db *mongo.Database) colls {
	return colls{recs: db.Collection("records"), snaps: db.Collection("snapshots"),
		chunks: db.Collection("snapshot_chunks"), lease: db.Collection("lease")}
}

// connect parses uri and connects (lazily: the driver dials on first use);
// writes use the URI's write concern, else w=majority, j=true.
func connect(uri string, timeout time.Duration) (*mongo.Client, *mongo.Database, error) {
	name := Redact(uri)
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, nil, fmt.Errorf("store %s: %w", name, err)
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = DefaultDatabase
	}
	co := options.Client().ApplyURI(uri).SetServerSelectionTimeout(timeout)
	if co.WriteConcern == nil {
		co.SetWriteConcern(&writeconcern.WriteConcern{W: "majority", Journal: ptr(true)})
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, nil, fmt.Errorf("store %s: %w", name, err)
	}
	return client, client.Database(dbName), nil
}

// newest is the newest snapshot (seq 0 when there is none), after calling
// fn for each record after it, in seq order.
func (c *colls) newest(ctx context.Context, fn func(seq int64, rec []byte) error) (SnapshotInfo, error) {
	var hdr snapHeader
	err := c.snaps.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&hdr)
	if err != nil && err != mongo.ErrNoDocuments {
		return SnapshotInfo{}, fmt.Errorf("read snapshots: %w", err)
	}
	info := SnapshotInfo{Seq: hdr.Seq}
	if hdr.Seq > 0 {
		data, err := c.snapshotBytes(ctx, hdr)
		if err != nil {
			return info, err
		}
		info.SHA256 = sha256.Sum256(data)
	}
	return info, c.records(ctx, hdr.Seq, fn)
}

// Newest calls fn for every record after the newest snapshot, in seq
// order, and returns that snapshot (Seq 0 when there is none).
func (s *Store) Newest(ctx context.Context, fn func(seq int64, rec []byte) error) (SnapshotInfo, error) {
	return s.newest(ctx, fn)
}

// Reader reads a database's snapshots and records without taking its
// lease, e.g. to verify it against an audit while its daemon runs.
type Reader struct {
	client *mongo.Client
	colls
}

// OpenReader connects to uri for reading.
func OpenReader(ctx context.Context, uri string) (*Reader, error) {
	client, db, err := connect(uri, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(ctx)
		return nil, fmt.Errorf("store %s: cannot reach the server: %w", Redact(uri), err)
	}
	return &Reader{client: client, colls: collsOf(db)}, nil
}

// Newest is Store.Newest.
func (r *Reader) Newest(ctx context.Context, fn func(seq int64, rec []byte) error) (SnapshotInfo, error) {
	return r.newest(ctx, fn)
}

// Close disconnects.
func (r *Reader) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.client.Disconnect(ctx)
}
