-- One lease shape for every background job (src/db/lease.rs): the stock lease's columns take
-- the names the import's and the pushes' leases have.
alter table stock_lease rename column owner to lease_owner;
alter table stock_lease rename column until to lease_until;
