//! OpenAPI shapes of request members that a derive attribute cannot state.

use crate::keys::{rules, scope};

/// An array or null (null reads as absent).
fn nullable_array() -> utoipa::openapi::schema::ArrayBuilder {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
}

/// RFC 6749 §3.3 scope tokens.
pub(super) fn scope_list() -> utoipa::openapi::schema::Array {
    nullable_array()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")),
        )
        .max_items(Some(scope::MAX_SCOPES))
        .build()
}

/// `https:`, `http:` or `urn:` URIs.
pub(super) fn audience_list() -> utoipa::openapi::schema::Array {
    nullable_array()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .max_length(Some(2048))
                .pattern(Some(
                    r"^(?:[hH][tT][tT][pP][sS]?|[uU][rR][nN]):[^\s\x00-\x1f\x7f-\x9f]+$",
                )),
        )
        .max_items(Some(rules::MAX_AUDIENCES))
        .build()
}

/// IPv4 and IPv6 addresses, and IPv4 CIDRs (IPv6 CIDRs are accepted too;
/// JSON Schema has no format for them).
pub(super) fn network_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let format = |f: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom(f.into())))
    };
    let octet = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let cidr = format!(r"^({octet}\.){{3}}{octet}/(3[0-2]|[12]?[0-9])$");
    nullable_array()
        .items(
            OneOfBuilder::new()
                .item(format("ipv4"))
                .item(format("ipv6"))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(cidr)),
                ),
        )
        .max_items(Some(rules::MAX_ALLOWED_IPS))
        .build()
}
