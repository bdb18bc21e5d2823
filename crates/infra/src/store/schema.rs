// Mirrors migrations/: `cargo xtask test` checks every column here against a migrated database.

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        is_instance_admin -> Bool,
        created_at -> Timestamptz,
        kind -> Text,
        disabled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        scopes -> Array<Text>,
        conversation_ids -> Nullable<Array<Uuid>>,
        prefix -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_digest -> Bytea,
        csrf_token -> Text,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        name -> Text,
        created_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workspace_members (workspace_id, user_id) {
        workspace_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    conversations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        kind -> Text,
        title -> Nullable<Text>,
        description -> Nullable<Text>,
        visibility -> Text,
        history_visible -> Bool,
        archived_at -> Nullable<Timestamptz>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        last_activity_at -> Timestamptz,
        last_seq -> Int8,
        direct_key -> Nullable<Text>,
        default_assistant_id -> Nullable<Uuid>,
        pin_policy -> Text,
        viewer_reactions -> Bool,
    }
}

diesel::table! {
    conversation_members (conversation_id, user_id) {
        conversation_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
        joined_seq -> Int8,
    }
}

diesel::table! {
    invites (code) {
        code -> Text,
        conversation_id -> Uuid,
        role -> Text,
        max_uses -> Nullable<Int4>,
        uses -> Int4,
        expires_at -> Nullable<Timestamptz>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        conversation_id -> Uuid,
        root_id -> Uuid,
        parent_id -> Nullable<Uuid>,
        depth -> Int4,
        path -> Array<Uuid>,
        seq -> Int8,
        author_id -> Nullable<Uuid>,
        role -> Text,
        content -> Text,
        status -> Text,
        client_msg_id -> Nullable<Text>,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        edit_count -> Int4,
        deleted_at -> Nullable<Timestamptz>,
        deleted_by -> Nullable<Uuid>,
        purge_at -> Nullable<Timestamptz>,
        pinned_at -> Nullable<Timestamptz>,
        pinned_by -> Nullable<Uuid>,
        mentions -> Jsonb,
        mentioned_user_ids -> Array<Uuid>,
        author_kind -> Text,
        via_kind -> Text,
        via_api_key_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    message_edits (message_id, version) {
        message_id -> Uuid,
        version -> Int4,
        content -> Text,
        edited_at -> Timestamptz,
        editor_id -> Uuid,
    }
}

diesel::table! {
    reactions (message_id, emoji, user_id) {
        message_id -> Uuid,
        emoji -> Text,
        user_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    threads (root_id) {
        root_id -> Uuid,
        conversation_id -> Uuid,
        title -> Nullable<Text>,
        tags -> Array<Text>,
        reply_count -> Int4,
        participant_ids -> Array<Uuid>,
        root_seq -> Int8,
        created_at -> Timestamptz,
        last_activity_at -> Timestamptz,
        settings -> Jsonb,
    }
}

diesel::table! {
    // No primary key in the database; diesel needs one named, and no query relies on it.
    login_failures (email, failed_at) {
        email -> Text,
        failed_at -> Timestamptz,
    }
}

diesel::table! {
    events (tx, id) {
        tx -> Int8,
        id -> Int8,
        conversation_id -> Nullable<Uuid>,
        kind -> Text,
        root_id -> Nullable<Uuid>,
        message_id -> Nullable<Uuid>,
        audience -> Nullable<Uuid>,
        occurred_at -> Timestamptz,
        data -> Text,
        workspace_id -> Uuid,
        open -> Bool,
    }
}

diesel::table! {
    event_log_state (singleton) {
        singleton -> Bool,
        pruned_tx -> Int8,
        pruned_id -> Int8,
    }
}

diesel::table! {
    workspace_spans (workspace_id, user_id, from_tx, from_id) {
        workspace_id -> Uuid,
        user_id -> Uuid,
        from_tx -> Int8,
        from_id -> Int8,
        until_tx -> Nullable<Int8>,
        until_id -> Nullable<Int8>,
    }
}

diesel::table! {
    member_spans (conversation_id, user_id, from_tx, from_id) {
        conversation_id -> Uuid,
        user_id -> Uuid,
        from_tx -> Int8,
        from_id -> Int8,
        until_tx -> Nullable<Int8>,
        until_id -> Nullable<Int8>,
    }
}

diesel::table! {
    departure_spans (conversation_id, user_id, from_tx, from_id) {
        conversation_id -> Uuid,
        user_id -> Uuid,
        from_tx -> Int8,
        from_id -> Int8,
        until_tx -> Nullable<Int8>,
        until_id -> Nullable<Int8>,
    }
}

diesel::table! {
    conversation_reads (user_id, conversation_id) {
        user_id -> Uuid,
        conversation_id -> Uuid,
        read_seq -> Int8,
    }
}

diesel::table! {
    thread_reads (user_id, root_id) {
        user_id -> Uuid,
        root_id -> Uuid,
        read_seq -> Int8,
    }
}

diesel::table! {
    stream_tokens (token_digest) {
        token_digest -> Bytea,
        session_id -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    presence (user_id) {
        user_id -> Uuid,
        last_seen_at -> Timestamptz,
        away -> Bool,
        announced -> Text,
    }
}

diesel::table! {
    assistants (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        provider -> Text,
        model -> Text,
        system_prompt -> Nullable<Text>,
        temperature -> Nullable<Float4>,
        max_tokens -> Nullable<Int4>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    generations (message_id) {
        message_id -> Uuid,
        parent_id -> Uuid,
        conversation_id -> Uuid,
        assistant_id -> Nullable<Uuid>,
        provider -> Text,
        model -> Text,
        requested_by -> Uuid,
        runner -> Uuid,
        finish_reason -> Nullable<Text>,
        input_tokens -> Nullable<Int4>,
        output_tokens -> Nullable<Int4>,
        total_tokens -> Nullable<Int4>,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
        started_at -> Timestamptz,
        first_token_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        cancel_requested -> Bool,
    }
}

diesel::table! {
    message_chunks (message_id, idx) {
        message_id -> Uuid,
        idx -> Int4,
        char_offset -> Int4,
        content -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    message_feedback (message_id, user_id) {
        message_id -> Uuid,
        user_id -> Uuid,
        rating -> Text,
        reason -> Nullable<Text>,
        comment -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    member_preferences (user_id, conversation_id) {
        user_id -> Uuid,
        conversation_id -> Uuid,
        starred -> Bool,
        mute_until -> Nullable<Timestamptz>,
        notify_level -> Text,
    }
}

diesel::table! {
    rate_limit_profiles (id) {
        id -> Uuid,
        name -> Text,
        is_default -> Bool,
        daily_messages -> Nullable<Int8>,
        daily_tokens -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    rate_limit_rules (profile_id, route_class) {
        profile_id -> Uuid,
        route_class -> Text,
        burst -> Int4,
        per_seconds -> Int4,
    }
}

diesel::table! {
    rate_limit_assignments (subject_kind, subject_id) {
        subject_kind -> Text,
        subject_id -> Uuid,
        profile_id -> Uuid,
    }
}

diesel::table! {
    rate_limit_buckets (bucket) {
        bucket -> Text,
        tat -> Timestamptz,
        interval -> Float8,
    }
}

diesel::table! {
    usage_daily (user_id, day, workspace_id) {
        user_id -> Uuid,
        workspace_id -> Uuid,
        day -> Date,
        messages -> Int8,
        tokens -> Int8,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    rate_limit_profiles,
    rate_limit_rules,
    rate_limit_assignments,
    rate_limit_buckets,
    usage_daily,
    api_keys,
    assistants,
    generations,
    message_chunks,
    message_feedback,
    users,
    sessions,
    workspaces,
    workspace_members,
    conversations,
    conversation_members,
    member_preferences,
    invites,
    messages,
    message_edits,
    reactions,
    threads,
    events,
    member_spans,
    departure_spans,
    workspace_spans,
    conversation_reads,
    thread_reads,
    stream_tokens,
    presence,
);
