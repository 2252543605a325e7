-- The audit log refuses deletes as well as updates.
create trigger audit_log_no_delete before delete on audit_log
    for each row execute function audit_log_append_only();
