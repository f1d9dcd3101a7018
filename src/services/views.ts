import { AppError } from '../errors.ts';
import type { SqlRunner } from '../db/sql-runner.ts';
import { isUuid } from '../ids.ts';
import type { ComposedEvent } from '../webhooks/dispatch.ts';
import type { CardViewedData, ViewSource } from '../webhooks/events.ts';
import { cardNotFound, type CardData, type PublicCard, type PublicProfile } from './cards.ts';
import type { UserRef } from '../user-ref.ts';

/**
 * Views of a user's profile and cards: where `card.viewed` happens. Each returns the event's
 * data exactly when the event occurred (a recorded view).
 */

/** A profile or card view as the route sees it. */
export interface ViewRequest {
  /** null for anonymous visitors. */
  viewer: UserRef | null;
  source: ViewSource;
}

/**
 * The view's `card.viewed` fan-out, as SQL for the view's own statement (DeliveryDispatcher.composeEvent):
 * `subscriber` is the CTE that yields the viewed card's owner when the view is recorded.
 */
export type ViewEvent = (data: Omit<CardViewedData, 'userId'>, at: { subscriber: string; offset: number }) => ComposedEvent;

/*
 * Why raw SQL here: this is the hot path (every public page view) and the benchmark's profile
 * showed Prisma's per-query work as its largest CPU cost. Each view is ONE autocommit statement
 * that reads the page, records the view and writes its event's delivery rows together (the view
 * row exists exactly when the page was served, and the event and its rows are one write): one
 * round trip and one commit. The routes run it through `db.grouped`, so on PostgreSQL the views
 * that arrive while others run share a transaction and its commit (src/db/group-commit.ts); each
 * statement stands alone, which is what makes that safe. Every statement runs on the two stores.
 *
 * A view is not recorded for the owner's own views, nor for a token whose account is gone (card_views
 * has no foreign keys, so that is checked here): that is a 401.
 */

const CARD_COLUMNS = `c.id, c.owner_id, c.title, c.company, c.job_title, c.bio, c.email, c.phone, c.website, c.is_public, c.created_at, c.updated_at`;

interface CardRow {
  id: string;
  owner_id: string;
  title: string;
  company: string | null;
  job_title: string | null;
  bio: string | null;
  email: string | null;
  phone: string | null;
  website: string | null;
  is_public: boolean;
  created_at: Date;
  updated_at: Date;
}

interface ProfileRow extends Omit<CardRow, 'id' | 'owner_id'> {
  /** null when the user has no public card (the LEFT JOIN found none). */
  id: string | null;
  owner_id: string | null;
  user_id: string;
  username: string;
  display_name: string;
  user_created_at: Date;
  recorded: boolean;
}

interface PublicCardRow extends CardRow {
  username: string;
  display_name: string;
  owner_created_at: Date;
  recorded: boolean;
}

/** A user's profile and public cards (private ones stay hidden, even from the owner, on this public page), recording the view. */
export async function viewProfile(sql: SqlRunner, username: string, request: ViewRequest, event: ViewEvent): Promise<PublicProfile> {
  const { viewer, source } = request;
  const fanOut = event({ cardId: null, viewer: viewerRef(viewer), source }, { subscriber: 'viewed', offset: 3 });
  const rows = await sql.query<ProfileRow & Recorded>(profileStatement(fanOut), [
    username.toLowerCase(),
    viewer?.id ?? null,
    source,
    ...fanOut.params,
  ]);
  const first = rows[0];
  if (!first) throw new AppError('NOT_FOUND', 'No such user');
  settle(first, fanOut);
  const user = { id: first.user_id, username: first.username, displayName: first.display_name, createdAt: first.user_created_at };
  const cards = rows.flatMap((row) =>
    row.id !== null && row.owner_id !== null ? [toCardData({ ...row, id: row.id, owner_id: row.owner_id })] : [],
  );
  return { user, cards };
}

/**
 * A card as the viewer may see it — public, or their own — recording the view. With `username`,
 * the card must also belong to that user. Every miss (malformed id, unknown, private, other
 * owner) is the same 404, so the answer does not reveal whether a private card exists.
 */
export async function viewCard(
  sql: SqlRunner,
  cardId: string,
  request: ViewRequest & { username?: string },
  event: ViewEvent,
): Promise<PublicCard> {
  const { viewer, source, username } = request;
  if (!isUuid(cardId)) throw cardNotFound();
  const fanOut = event({ cardId, viewer: viewerRef(viewer), source }, { subscriber: 'viewed', offset: 4 });
  const rows = await sql.query<PublicCardRow & Recorded>(cardStatement(fanOut), [
    cardId,
    viewer?.id ?? null,
    source,
    username?.toLowerCase() ?? null,
    ...fanOut.params,
  ]);
  const row = rows[0];
  if (!row) throw cardNotFound();
  settle(row, fanOut);
  const owner = { id: row.owner_id, username: row.username, displayName: row.display_name, createdAt: row.owner_created_at };
  return { ...toCardData(row), owner };
}

/** $2 is the viewer's id: a token that outlived its account must not record a view. */
const VIEWER_GONE = `viewer_gone AS (
         SELECT $2::uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE id = $2::uuid) AS gone
       )`;

/**
 * The view's row, read from the CTE `from` (the page's owner or card), unless the viewer ($2) is
 * the owner or a token whose account is gone; yields the owner as the fan-out's subscriber.
 */
function viewedCte(columns: { from: string; ownerId: string; cardId: string }): string {
  const { from, ownerId, cardId } = columns;
  return `viewed AS (
         INSERT INTO card_views (owner_id, card_id, viewer_id, source)
         SELECT ${ownerId}, ${cardId}, $2::uuid, $3 FROM ${from} WHERE ${ownerId} IS DISTINCT FROM $2::uuid AND NOT (SELECT gone FROM viewer_gone)
         RETURNING owner_id AS user_id
       )`;
}

/**
 * A view's statement text, built once per fan-out text (composeEvent gives the same string every
 * time): rebuilding it per view cost a fresh 5 KB string, hashed again to find its prepared name.
 */
function statementPerFanOut(build: (fanOut: ComposedEvent) => string): (fanOut: ComposedEvent) => string {
  const texts = new Map<string, { written: string; text: string }>();
  return (fanOut) => {
    const known = texts.get(fanOut.ctes);
    if (known?.written === fanOut.written) return known.text;
    const text = build(fanOut);
    texts.set(fanOut.ctes, { written: fanOut.written, text });
    return text;
  };
}

const profileStatement = statementPerFanOut(
  (fanOut) => `WITH owner AS (
         SELECT id, username, display_name, created_at FROM users WHERE username = $1
       ),
       ${VIEWER_GONE},
       ${viewedCte({ from: 'owner', ownerId: 'id', cardId: 'NULL' })},
       ${fanOut.ctes}
       SELECT o.id AS user_id, o.username, o.display_name, o.created_at AS user_created_at,
              (SELECT gone FROM viewer_gone) AS viewer_gone, ${fanOut.written} AS fan_out, ${CARD_COLUMNS}
       FROM owner o LEFT JOIN cards c ON c.owner_id = o.id AND c.is_public
       ORDER BY c.created_at, c.id`,
);

const cardStatement = statementPerFanOut(
  (fanOut) => `WITH card AS (
         SELECT ${CARD_COLUMNS}, u.username, u.display_name, u.created_at AS owner_created_at
         FROM cards c JOIN users u ON u.id = c.owner_id
         WHERE c.id = $1::uuid AND (c.is_public OR c.owner_id = $2::uuid) AND ($4::text IS NULL OR u.username = $4::text)
       ),
       ${VIEWER_GONE},
       ${viewedCte({ from: 'card', ownerId: 'owner_id', cardId: 'id' })},
       ${fanOut.ctes}
       SELECT card.*, (SELECT gone FROM viewer_gone) AS viewer_gone, ${fanOut.written} AS fan_out FROM card`,
);

interface Recorded {
  viewer_gone: boolean;
  fan_out: unknown;
}

function settle(row: Recorded, fanOut: ComposedEvent): void {
  if (row.viewer_gone) throw new AppError('INVALID_TOKEN', 'The account of this token no longer exists');
  fanOut.settle(row.fan_out);
}

function viewerRef(viewer: UserRef | null): UserRef | null {
  return viewer && { id: viewer.id, username: viewer.username };
}

function toCardData(row: CardRow): CardData {
  return {
    id: row.id,
    ownerId: row.owner_id,
    title: row.title,
    company: row.company,
    jobTitle: row.job_title,
    bio: row.bio,
    email: row.email,
    phone: row.phone,
    website: row.website,
    isPublic: row.is_public,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
