-- Yahoo's rate limit is per app (client ID) and API URL, whichever server calls: the next
-- allowed call time per app and URL, moved atomically by every server sharing this database.
create table yahoo_pace (
    client_id text not null,
    url text not null,
    next_at timestamptz not null,
    primary key (client_id, url)
);
