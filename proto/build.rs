//! Compiles `tickwire/v1/*.proto` (beside this file) into Rust types (prost) and canonical
//! proto3 JSON serde impls (pbjson). `protox` parses the schema in pure Rust,
//! so a fresh machine needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(".");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(proto_dir.join("tickwire/v1"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    files.sort();
    println!("cargo:rerun-if-changed=tickwire");

    let descriptors = protox::compile(&files, [&proto_dir])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("tickwire_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    std::fs::write(
        out_dir.join("tickwire.v1.fields.rs"),
        field_numbers(&descriptors),
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .ignore_unknown_fields()
        .build(&[".tickwire.v1"])?;
    Ok(())
}

/// `pub mod <message> { pub const <FIELD>: u32 = N; }` for every message of
/// the schema, so decoders that read the wire by hand (the load tester's
/// zero-allocation reader) take field numbers from the schema itself.
fn field_numbers(set: &prost_types::FileDescriptorSet) -> String {
    fn snake(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
    fn message(out: &mut String, m: &prost_types::DescriptorProto, indent: usize) {
        let pad = " ".repeat(indent);
        let name = m.name();
        out.push_str(&format!(
            "{pad}/// Field numbers of `{name}`.\n{pad}pub mod {} {{\n",
            snake(name)
        ));
        for f in &m.field {
            out.push_str(&format!(
                "{pad}    /// `{}`\n{pad}    pub const {}: u32 = {};\n",
                f.name(),
                f.name().to_ascii_uppercase(),
                f.number()
            ));
        }
        for nested in m
            .nested_type
            .iter()
            .filter(|n| !n.options.as_ref().is_some_and(|o| o.map_entry()))
        {
            message(out, nested, indent + 4);
        }
        out.push_str(&format!("{pad}}}\n"));
    }
    let mut out = String::new();
    for file in &set.file {
        for m in &file.message_type {
            message(&mut out, m, 0);
        }
    }
    out
}
