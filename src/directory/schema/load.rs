//! Loading a schema from OpenLDAP-style `.schema` files (RFC 4512 descriptions plus the
//! `objectidentifier` macros and `X-` extensions real files use): tokenizing and parsing
//! them, then resolving and cross-checking the definitions (references, inheritance of
//! matching rules and syntax from superior types, redefinitions). Its only I/O is
//! `Schema::load_dir`, which reads an admin's drop-in directory.

use std::collections::HashSet;
use std::path::Path;

use super::*;
use crate::directory::matching::{MatchingRule, RuleKind, Syntax, is_descr, is_numeric_oid};

/// The schema files Tessera ships, in load order.
const SHIPPED: &[(&str, &str)] = &[
    (
        "system.schema",
        include_str!("../../../schema/system.schema"),
    ),
    ("core.schema", include_str!("../../../schema/core.schema")),
    (
        "cosine.schema",
        include_str!("../../../schema/cosine.schema"),
    ),
    (
        "inetorgperson.schema",
        include_str!("../../../schema/inetorgperson.schema"),
    ),
    (
        "rfc2307bis.schema",
        include_str!("../../../schema/rfc2307bis.schema"),
    ),
    (
        "openssh-lpk.schema",
        include_str!("../../../schema/openssh-lpk.schema"),
    ),
    (
        "tessera.schema",
        include_str!("../../../schema/tessera.schema"),
    ),
];

impl Schema {
    /// The schema Tessera ships: system, core, cosine, inetorgperson, rfc2307bis,
    /// openssh-lpk and tessera, in that order.
    pub fn shipped() -> Result<Schema, SchemaError> {
        let files: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect();
        Schema::default().with_files(&files)
    }

    /// Adds `(file name, text)` schema files, in order. Definitions may refer to anything
    /// already loaded or anywhere in these files; redefining an OID, or a name within its
    /// namespace (attribute types and object classes have separate ones), is an error.
    /// `objectidentifier` macros stay defined for later files and calls.
    pub fn with_files(mut self, files: &[(String, String)]) -> Result<Schema, SchemaError> {
        let mut attributes = Vec::new();
        let mut classes = Vec::new();
        for (file, text) in files {
            self.parse_file(file, text, &mut attributes, &mut classes)?;
        }
        self.add_attributes(attributes)?;
        self.add_classes(classes)?;
        Ok(self)
    }

    /// Adds every `*.schema` file in `dir`, sorted by file name.
    pub fn load_dir(self, dir: &Path) -> Result<Schema, SchemaError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SchemaError::Io { path, source }
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if path.extension().is_some_and(|ext| ext == "schema") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
            files.push((path.display().to_string(), text));
        }
        self.with_files(&files)
    }
}

/// A parsed attribute type whose references are not yet resolved.
struct RawAttribute {
    at: Location,
    oid: String,
    names: Vec<String>,
    desc: Option<String>,
    sup: Option<Reference>,
    equality: Option<Reference>,
    ordering: Option<Reference>,
    substr: Option<Reference>,
    syntax: Option<(Syntax, Option<u64>)>,
    single_value: bool,
    collective: bool,
    no_user_modification: bool,
    usage: Usage,
    obsolete: bool,
    extensions: Vec<(String, Vec<String>)>,
}

/// A parsed object class whose references are not yet resolved.
struct RawClass {
    at: Location,
    oid: String,
    names: Vec<String>,
    desc: Option<String>,
    sup: Vec<Reference>,
    kind: ClassKind,
    must: Vec<Reference>,
    may: Vec<Reference>,
    obsolete: bool,
    extensions: Vec<(String, Vec<String>)>,
}

/// Where a definition starts, and what it is called in error messages.
#[derive(Clone)]
struct Location {
    file: String,
    line: usize,
    subject: String,
}

/// A name or OID as written, with the line it was written on.
#[derive(Clone)]
struct Reference {
    name: String,
    line: usize,
}

impl Location {
    fn invalid(&self, line: usize, problem: impl Into<String>) -> SchemaError {
        SchemaError::Invalid {
            file: self.file.clone(),
            line,
            subject: self.subject.clone(),
            problem: problem.into(),
        }
    }

    fn origin(&self) -> String {
        format!("{} ({}:{})", self.subject, self.file, self.line)
    }
}

/// Where an attribute type or class referred to by name lives during resolution.
#[derive(Clone, Copy)]
enum Found {
    Loaded(usize),
    New(usize),
}

impl Schema {
    fn parse_file(
        &mut self,
        file: &str,
        text: &str,
        attributes: &mut Vec<RawAttribute>,
        classes: &mut Vec<RawClass>,
    ) -> Result<(), SchemaError> {
        let malformed = |line: usize, problem: String| SchemaError::Malformed {
            file: file.to_owned(),
            line,
            problem,
        };
        for statement in statements(text).map_err(|(line, problem)| malformed(line, problem))? {
            let tokens =
                tokenize(&statement).map_err(|(line, problem)| malformed(line, problem))?;
            let Some((keyword, body)) = tokens.split_first() else {
                continue;
            };
            let Tok::Word(word) = &keyword.kind else {
                return Err(malformed(keyword.line, "expected a keyword".to_owned()));
            };
            match word.to_ascii_lowercase().as_str() {
                "attributetype" | "attributetypes" => {
                    let description = parse_description(body, keyword.line)
                        .map_err(|(line, problem)| malformed(line, problem))?;
                    attributes.push(self.raw_attribute(file, description)?);
                }
                "objectclass" | "objectclasses" => {
                    let description = parse_description(body, keyword.line)
                        .map_err(|(line, problem)| malformed(line, problem))?;
                    classes.push(self.raw_class(file, description)?);
                }
                "objectidentifier" => self.define_macro(file, keyword.line, body)?,
                _ => {
                    return Err(malformed(
                        keyword.line,
                        format!(
                            "unsupported statement '{word}' (expected attributetype, objectclass or objectidentifier)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `objectidentifier Name 1.2.3` or `objectidentifier Name Other:4`.
    fn define_macro(&mut self, file: &str, line: usize, body: &[Token]) -> Result<(), SchemaError> {
        let invalid = |subject: String, problem: String| SchemaError::Invalid {
            file: file.to_owned(),
            line,
            subject,
            problem,
        };
        let [name, value] = body else {
            return Err(SchemaError::Malformed {
                file: file.to_owned(),
                line,
                problem: "objectidentifier takes a name and an OID".to_owned(),
            });
        };
        let (Tok::Word(name), Tok::Word(value)) = (&name.kind, &value.kind) else {
            return Err(SchemaError::Malformed {
                file: file.to_owned(),
                line: name.line,
                problem: "objectidentifier takes a name and an OID, unquoted".to_owned(),
            });
        };
        let subject = format!("objectidentifier {name}");
        if !is_descr(name) {
            return Err(invalid(
                subject,
                format!("'{name}' is not a valid macro name"),
            ));
        }
        let oid = self
            .expand_oid(value)
            .map_err(|problem| invalid(subject.clone(), problem))?;
        match self.macros.get(&name.to_ascii_lowercase()) {
            Some(existing) if *existing != oid => Err(invalid(
                subject,
                format!("already defined as {existing}, cannot redefine as {oid}"),
            )),
            _ => {
                self.macros.insert(name.to_ascii_lowercase(), oid);
                Ok(())
            }
        }
    }

    /// A numeric OID, `Macro`, or `Macro:suffix` expanded to a numeric OID.
    fn expand_oid(&self, word: &str) -> Result<String, String> {
        if is_numeric_oid(word) {
            return Ok(word.to_owned());
        }
        let (name, suffix) = match word.split_once(':') {
            Some((name, suffix)) => (name, Some(suffix)),
            None => (word, None),
        };
        let Some(base) = self.macros.get(&name.to_ascii_lowercase()) else {
            return Err(format!(
                "'{word}' is neither a numeric OID nor a defined objectidentifier macro"
            ));
        };
        let oid = match suffix {
            Some(suffix) => format!("{base}.{suffix}"),
            None => base.clone(),
        };
        if is_numeric_oid(&oid) {
            Ok(oid)
        } else {
            Err(format!(
                "'{word}' expands to '{oid}', which is not a numeric OID"
            ))
        }
    }

    fn raw_attribute(
        &self,
        file: &str,
        description: Description,
    ) -> Result<RawAttribute, SchemaError> {
        let at = Self::location(file, "attributetype", &description);
        let oid = self.definition_oid(&at, &description)?;
        let mut raw = RawAttribute {
            at: at.clone(),
            oid,
            names: Vec::new(),
            desc: None,
            sup: None,
            equality: None,
            ordering: None,
            substr: None,
            syntax: None,
            single_value: false,
            collective: false,
            no_user_modification: false,
            usage: Usage::UserApplications,
            obsolete: false,
            extensions: Vec::new(),
        };
        for field in checked_fields(&at, description.fields)? {
            let line = field.line;
            match (field.keyword.as_str(), field.value) {
                ("NAME", Value::Strings(names)) => raw.names = checked_names(&at, line, names)?,
                ("DESC", Value::Strings(text)) => raw.desc = text.into_iter().next(),
                ("OBSOLETE", Value::Flag) => raw.obsolete = true,
                ("SUP", Value::Words(words)) => raw.sup = Some(single(&at, line, "SUP", words)?),
                ("EQUALITY", Value::Words(words)) => {
                    raw.equality = Some(single(&at, line, "EQUALITY", words)?)
                }
                ("ORDERING", Value::Words(words)) => {
                    raw.ordering = Some(single(&at, line, "ORDERING", words)?)
                }
                ("SUBSTR", Value::Words(words)) => {
                    raw.substr = Some(single(&at, line, "SUBSTR", words)?)
                }
                ("SYNTAX", Value::Words(words)) => {
                    let written = single(&at, line, "SYNTAX", words)?.name;
                    raw.syntax = Some(self.syntax(&at, line, &written)?);
                }
                ("SINGLE-VALUE", Value::Flag) => raw.single_value = true,
                ("COLLECTIVE", Value::Flag) => raw.collective = true,
                ("NO-USER-MODIFICATION", Value::Flag) => raw.no_user_modification = true,
                ("USAGE", Value::Words(words)) => {
                    let written = single(&at, line, "USAGE", words)?.name;
                    raw.usage = Usage::from_keyword(&written)
                        .ok_or_else(|| at.invalid(line, format!("unknown USAGE '{written}'")))?;
                }
                (keyword, Value::Strings(values)) if keyword.starts_with("X-") => {
                    raw.extensions.push((keyword.to_owned(), values));
                }
                (keyword, _) => {
                    return Err(at.invalid(
                        line,
                        format!("{keyword} is not allowed in an attribute type"),
                    ));
                }
            }
        }
        Ok(raw)
    }

    fn raw_class(&self, file: &str, description: Description) -> Result<RawClass, SchemaError> {
        let at = Self::location(file, "objectclass", &description);
        let oid = self.definition_oid(&at, &description)?;
        let mut raw = RawClass {
            at: at.clone(),
            oid,
            names: Vec::new(),
            desc: None,
            sup: Vec::new(),
            kind: ClassKind::Structural,
            must: Vec::new(),
            may: Vec::new(),
            obsolete: false,
            extensions: Vec::new(),
        };
        let mut kind_given = false;
        for field in checked_fields(&at, description.fields)? {
            let line = field.line;
            let kind = match field.keyword.as_str() {
                "ABSTRACT" => Some(ClassKind::Abstract),
                "STRUCTURAL" => Some(ClassKind::Structural),
                "AUXILIARY" => Some(ClassKind::Auxiliary),
                _ => None,
            };
            if let Some(kind) = kind {
                if kind_given {
                    return Err(
                        at.invalid(line, "more than one of ABSTRACT, STRUCTURAL, AUXILIARY")
                    );
                }
                kind_given = true;
                raw.kind = kind;
                continue;
            }
            match (field.keyword.as_str(), field.value) {
                ("NAME", Value::Strings(names)) => raw.names = checked_names(&at, line, names)?,
                ("DESC", Value::Strings(text)) => raw.desc = text.into_iter().next(),
                ("OBSOLETE", Value::Flag) => raw.obsolete = true,
                ("SUP", Value::Words(words)) => raw.sup = references(line, words),
                ("MUST", Value::Words(words)) => raw.must = references(line, words),
                ("MAY", Value::Words(words)) => raw.may = references(line, words),
                (keyword, Value::Strings(values)) if keyword.starts_with("X-") => {
                    raw.extensions.push((keyword.to_owned(), values));
                }
                (keyword, _) => {
                    return Err(
                        at.invalid(line, format!("{keyword} is not allowed in an object class"))
                    );
                }
            }
        }
        Ok(raw)
    }

    /// Names the definition for error messages by its first NAME, else its OID as written.
    fn location(file: &str, what: &str, description: &Description) -> Location {
        let name = description
            .fields
            .iter()
            .find(|field| field.keyword == "NAME")
            .and_then(|field| match &field.value {
                Value::Strings(names) => names.first().cloned(),
                _ => None,
            })
            .unwrap_or_else(|| description.oid.clone());
        Location {
            file: file.to_owned(),
            line: description.line,
            subject: format!("{what} {name}"),
        }
    }

    fn definition_oid(
        &self,
        at: &Location,
        description: &Description,
    ) -> Result<String, SchemaError> {
        self.expand_oid(&description.oid)
            .map_err(|problem| at.invalid(description.line, problem))
    }

    /// `1.3.6.1.4.1.1466.115.121.1.15{256}`, possibly through a macro.
    fn syntax(
        &self,
        at: &Location,
        line: usize,
        written: &str,
    ) -> Result<(Syntax, Option<u64>), SchemaError> {
        let (oid, len) = match written.split_once('{') {
            Some((oid, rest)) => {
                let len = rest
                    .strip_suffix('}')
                    .and_then(|digits| digits.parse::<u64>().ok())
                    .ok_or_else(|| {
                        at.invalid(line, format!("malformed length in SYNTAX '{written}'"))
                    })?;
                (oid, Some(len))
            }
            None => (written, None),
        };
        let oid = self
            .expand_oid(oid)
            .map_err(|problem| at.invalid(line, problem))?;
        let syntax = Syntax::from_oid(&oid)
            .ok_or_else(|| at.invalid(line, format!("unknown syntax '{oid}' in SYNTAX")))?;
        Ok((syntax, len))
    }

    fn add_attributes(&mut self, raws: Vec<RawAttribute>) -> Result<(), SchemaError> {
        let new_index = self.register(
            raws.iter()
                .map(|raw| (&raw.at, raw.oid.as_str(), raw.names.as_slice())),
            Namespace::Attribute,
        )?;
        let find = |schema: &Schema, name: &str| -> Option<Found> {
            let key = name.to_ascii_lowercase();
            match schema.attribute_index.get(&key) {
                Some(&index) => Some(Found::Loaded(index)),
                None => new_index.get(&key).map(|&index| Found::New(index)),
            }
        };
        // Resolve supertypes before subtypes: walk each unresolved chain upwards, then
        // resolve it from the top down. A chain that meets itself is a cycle.
        let mut resolved: Vec<Option<AttributeType>> = vec![None; raws.len()];
        for start in 0..raws.len() {
            let mut chain = vec![start];
            let mut current = start;
            while resolved.get(current).is_some_and(Option::is_none) {
                let Some(raw) = raws.get(current) else { break };
                let Some(sup) = &raw.sup else { break };
                match find(self, &sup.name) {
                    None => {
                        return Err(raw.at.invalid(
                            sup.line,
                            format!("unknown superior attribute type '{}' in SUP", sup.name),
                        ));
                    }
                    Some(Found::Loaded(_)) => break,
                    Some(Found::New(next)) => {
                        if chain.contains(&next) {
                            return Err(raw.at.invalid(
                                sup.line,
                                format!(
                                    "superior attribute type '{}' leads back to itself",
                                    sup.name
                                ),
                            ));
                        }
                        chain.push(next);
                        current = next;
                    }
                }
            }
            for &index in chain.iter().rev() {
                let Some(raw) = raws.get(index) else { continue };
                if resolved.get(index).is_some_and(Option::is_some) {
                    continue;
                }
                let sup = match raw.sup.as_ref().and_then(|sup| find(self, &sup.name)) {
                    Some(Found::Loaded(i)) => self.attributes.get(i),
                    Some(Found::New(i)) => resolved.get(i).and_then(Option::as_ref),
                    None => None,
                };
                let attribute = resolve_attribute(raw, sup)?;
                if let Some(slot) = resolved.get_mut(index) {
                    *slot = Some(attribute);
                }
            }
        }
        for (raw, attribute) in raws.iter().zip(resolved) {
            let Some(attribute) = attribute else { continue };
            let index = self.attributes.len();
            for key in attribute.names.iter().chain([&attribute.oid]) {
                self.attribute_index.insert(key.to_ascii_lowercase(), index);
            }
            self.defined_oids
                .insert(attribute.oid.clone(), raw.at.origin());
            self.attributes.push(attribute);
        }
        Ok(())
    }

    fn add_classes(&mut self, raws: Vec<RawClass>) -> Result<(), SchemaError> {
        let new_index = self.register(
            raws.iter()
                .map(|raw| (&raw.at, raw.oid.as_str(), raw.names.as_slice())),
            Namespace::Class,
        )?;
        let find = |name: &str| -> Option<Found> {
            let key = name.to_ascii_lowercase();
            match self.class_index.get(&key) {
                Some(&index) => Some(Found::Loaded(index)),
                None => new_index.get(&key).map(|&index| Found::New(index)),
            }
        };
        let top_known = find(TOP_OID).is_some();
        let mut classes = Vec::with_capacity(raws.len());
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(raws.len());
        for raw in &raws {
            let mut sup = Vec::with_capacity(raw.sup.len());
            let mut new_sups = Vec::new();
            for reference in &raw.sup {
                let (name, kind) = match find(&reference.name) {
                    Some(Found::Loaded(i)) => match self.classes.get(i) {
                        Some(class) => (class.name().to_owned(), class.kind),
                        None => continue,
                    },
                    Some(Found::New(i)) => {
                        new_sups.push(i);
                        match raws.get(i) {
                            Some(other) => (primary_name(&other.names, &other.oid), other.kind),
                            None => continue,
                        }
                    }
                    None => {
                        return Err(raw.at.invalid(
                            reference.line,
                            format!("unknown superclass '{}' in SUP", reference.name),
                        ));
                    }
                };
                let allowed = match raw.kind {
                    ClassKind::Abstract => kind == ClassKind::Abstract,
                    ClassKind::Structural => kind != ClassKind::Auxiliary,
                    ClassKind::Auxiliary => kind != ClassKind::Structural,
                };
                if !allowed {
                    return Err(raw.at.invalid(
                        reference.line,
                        format!(
                            "a {} class cannot have the {} superclass '{}' (RFC 4512 2.4)",
                            raw.kind.as_str(),
                            kind.as_str(),
                            reference.name
                        ),
                    ));
                }
                sup.push(name);
            }
            if sup.is_empty() && raw.oid != TOP_OID && top_known {
                // RFC 4512 roots every class at top; spell it out so it is published.
                sup.push("top".to_owned());
            }
            let must = self.class_attributes(raw, &raw.must, "MUST")?;
            let may = self.class_attributes(raw, &raw.may, "MAY")?;
            edges.push(new_sups);
            classes.push(ObjectClass {
                oid: raw.oid.clone(),
                names: raw.names.clone(),
                desc: raw.desc.clone(),
                sup,
                kind: raw.kind,
                must,
                may,
                obsolete: raw.obsolete,
                extensions: raw.extensions.clone(),
            });
        }
        if let Some(index) = first_cycle(&edges)
            && let Some(raw) = raws.get(index)
        {
            return Err(raw
                .at
                .invalid(raw.at.line, "its superclasses lead back to itself"));
        }
        for (raw, class) in raws.iter().zip(classes) {
            let index = self.classes.len();
            for key in class.names.iter().chain([&class.oid]) {
                self.class_index.insert(key.to_ascii_lowercase(), index);
            }
            self.defined_oids.insert(class.oid.clone(), raw.at.origin());
            self.classes.push(class);
        }
        Ok(())
    }

    /// MUST or MAY references, each checked and canonicalized to the type's primary name.
    fn class_attributes(
        &self,
        raw: &RawClass,
        references: &[Reference],
        keyword: &str,
    ) -> Result<Vec<String>, SchemaError> {
        let mut names: Vec<String> = Vec::with_capacity(references.len());
        for reference in references {
            let attribute = self.attribute(&reference.name).ok_or_else(|| {
                raw.at.invalid(
                    reference.line,
                    format!("unknown attribute type '{}' in {keyword}", reference.name),
                )
            })?;
            // A type listed twice (or by name and alias) is listed once.
            if !names.iter().any(|name| name == attribute.name()) {
                names.push(attribute.name().to_owned());
            }
        }
        Ok(names)
    }

    /// Checks new definitions' OIDs and names against everything loaded and each other,
    /// and returns the new definitions' lookup table.
    fn register<'a>(
        &self,
        definitions: impl Iterator<Item = (&'a Location, &'a str, &'a [String])>,
        namespace: Namespace,
    ) -> Result<NameIndex, SchemaError> {
        let loaded_names = match namespace {
            Namespace::Attribute => &self.attribute_index,
            Namespace::Class => &self.class_index,
        };
        let mut new_index = NameIndex::default();
        let mut new_origins: Vec<String> = Vec::new();
        let mut new_oids: HashMap<&str, usize> = HashMap::new();
        for (index, (at, oid, names)) in definitions.enumerate() {
            let clash = if let Some(origin) = self.defined_oids.get(oid) {
                Some(origin.clone())
            } else if let Some(rule) = MatchingRule::from_name(oid) {
                Some(format!("matching rule {}", rule.name()))
            } else if let Some(syntax) = Syntax::from_oid(oid) {
                Some(format!("syntax {}", syntax.desc()))
            } else {
                new_oids.get(oid).and_then(|&i| new_origins.get(i).cloned())
            };
            if let Some(origin) = clash {
                return Err(at.invalid(at.line, format!("OID {oid} is already used by {origin}")));
            }
            new_oids.insert(oid, index);
            for name in names {
                let key = name.to_ascii_lowercase();
                let clash = match loaded_names.get(&key) {
                    Some(&loaded) => {
                        let oid = match namespace {
                            Namespace::Attribute => self.attributes.get(loaded).map(|a| &a.oid),
                            Namespace::Class => self.classes.get(loaded).map(|c| &c.oid),
                        };
                        oid.and_then(|oid| self.defined_oids.get(oid)).cloned()
                    }
                    None => new_index
                        .get(&key)
                        .and_then(|&i| new_origins.get(i).cloned()),
                };
                if let Some(origin) = clash {
                    return Err(at.invalid(
                        at.line,
                        format!("name '{name}' is already used by {origin}"),
                    ));
                }
                new_index.insert(key, index);
            }
            new_index.insert(oid.to_owned(), index);
            new_origins.push(at.origin());
        }
        Ok(new_index)
    }
}

#[derive(Clone, Copy)]
enum Namespace {
    Attribute,
    Class,
}

/// Applies inheritance and the RFC 4512 consistency rules to one attribute type.
fn resolve_attribute(
    raw: &RawAttribute,
    sup: Option<&AttributeType>,
) -> Result<AttributeType, SchemaError> {
    let at = &raw.at;
    let rule = |reference: &Option<Reference>,
                kind: RuleKind,
                keyword: &str|
     -> Result<Option<MatchingRule>, SchemaError> {
        let Some(reference) = reference else {
            return Ok(None);
        };
        let rule = MatchingRule::from_name(&reference.name).ok_or_else(|| {
            at.invalid(
                reference.line,
                format!("unknown matching rule '{}' in {keyword}", reference.name),
            )
        })?;
        if rule.kind() != kind {
            return Err(at.invalid(
                reference.line,
                format!(
                    "{} is not {} rule, so it cannot be used in {keyword}",
                    rule.name(),
                    kind_word(kind)
                ),
            ));
        }
        Ok(Some(rule))
    };
    let equality =
        rule(&raw.equality, RuleKind::Equality, "EQUALITY")?.or(sup.and_then(|s| s.equality));
    let ordering =
        rule(&raw.ordering, RuleKind::Ordering, "ORDERING")?.or(sup.and_then(|s| s.ordering));
    let substr = rule(&raw.substr, RuleKind::Substrings, "SUBSTR")?.or(sup.and_then(|s| s.substr));
    let (syntax, syntax_len) = match (raw.syntax, sup) {
        (Some(syntax), _) => syntax,
        (None, Some(sup)) => (sup.syntax, sup.syntax_len),
        (None, None) => return Err(at.invalid(at.line, "has neither SYNTAX nor SUP")),
    };
    if let Some(sup) = sup
        && sup.usage != raw.usage
    {
        return Err(at.invalid(
            at.line,
            format!(
                "USAGE {} differs from its superior {}'s USAGE {}",
                raw.usage.as_str(),
                sup.name(),
                sup.usage.as_str()
            ),
        ));
    }
    if raw.no_user_modification && raw.usage == Usage::UserApplications {
        return Err(at.invalid(
            at.line,
            "NO-USER-MODIFICATION requires an operational USAGE",
        ));
    }
    if raw.collective && raw.usage != Usage::UserApplications {
        return Err(at.invalid(at.line, "COLLECTIVE requires USAGE userApplications"));
    }
    Ok(AttributeType {
        oid: raw.oid.clone(),
        names: raw.names.clone(),
        desc: raw.desc.clone(),
        sup: sup.map(|sup| sup.name().to_owned()),
        equality,
        ordering,
        substr,
        syntax,
        syntax_len,
        single_value: raw.single_value,
        collective: raw.collective,
        no_user_modification: raw.no_user_modification,
        usage: raw.usage,
        obsolete: raw.obsolete,
        extensions: raw.extensions.clone(),
    })
}

fn kind_word(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Equality => "an equality",
        RuleKind::Ordering => "an ordering",
        RuleKind::Substrings => "a substrings",
    }
}

fn primary_name(names: &[String], oid: &str) -> String {
    names.first().map_or_else(|| oid.to_owned(), Clone::clone)
}

/// The first node on a cycle of `edges`, found by an iterative depth-first search.
fn first_cycle(edges: &[Vec<usize>]) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unvisited,
        Active,
        Done,
    }
    let mut state = vec![State::Unvisited; edges.len()];
    for start in 0..edges.len() {
        if state.get(start) != Some(&State::Unvisited) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        if let Some(s) = state.get_mut(start) {
            *s = State::Active;
        }
        while let Some((node, next_edge)) = stack.pop() {
            let Some(&target) = edges.get(node).and_then(|targets| targets.get(next_edge)) else {
                if let Some(s) = state.get_mut(node) {
                    *s = State::Done;
                }
                continue;
            };
            stack.push((node, next_edge + 1));
            match state.get(target) {
                Some(State::Active) => return Some(target),
                Some(State::Unvisited) => {
                    if let Some(s) = state.get_mut(target) {
                        *s = State::Active;
                    }
                    stack.push((target, 0));
                }
                _ => {}
            }
        }
    }
    None
}

fn checked_names(
    at: &Location,
    line: usize,
    names: Vec<String>,
) -> Result<Vec<String>, SchemaError> {
    if names.is_empty() {
        return Err(at.invalid(line, "NAME has no names"));
    }
    let mut seen = HashSet::new();
    for name in &names {
        if !is_descr(name) {
            return Err(at.invalid(
                line,
                format!("'{name}' is not a valid name (a letter, then letters, digits or '-')"),
            ));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(at.invalid(line, format!("name '{name}' is listed twice")));
        }
    }
    Ok(names)
}

/// Rejects a keyword given twice (`X-` extensions may repeat).
fn checked_fields(at: &Location, fields: Vec<Field>) -> Result<Vec<Field>, SchemaError> {
    let mut seen = HashSet::new();
    for field in &fields {
        if !field.keyword.starts_with("X-") && !seen.insert(field.keyword.clone()) {
            return Err(at.invalid(field.line, format!("{} is given twice", field.keyword)));
        }
    }
    Ok(fields)
}

fn single(
    at: &Location,
    line: usize,
    keyword: &str,
    words: Vec<String>,
) -> Result<Reference, SchemaError> {
    match <[String; 1]>::try_from(words) {
        Ok([name]) => Ok(Reference { name, line }),
        Err(_) => Err(at.invalid(line, format!("{keyword} takes exactly one value"))),
    }
}

fn references(line: usize, words: Vec<String>) -> Vec<Reference> {
    words
        .into_iter()
        .map(|name| Reference { name, line })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Text: statements, tokens, descriptions. Errors here are `(line, problem)` pairs; the
// caller adds the file name.

/// One statement: a line starting in column 0 plus its indented continuation lines.
struct Statement {
    text: String,
    /// Byte offset in `text` where each source line starts, with its line number.
    lines: Vec<(usize, usize)>,
}

impl Statement {
    fn line_at(&self, offset: usize) -> usize {
        let index = self.lines.partition_point(|(start, _)| *start <= offset);
        index
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map_or(1, |(_, line)| *line)
    }
}

fn statements(text: &str) -> Result<Vec<Statement>, (usize, String)> {
    let mut out: Vec<Statement> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let content = line.trim_start();
        // Comments and blank lines may sit anywhere, even inside a continued definition.
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.len() == line.len() {
            out.push(Statement {
                text: line.to_owned(),
                lines: vec![(0, number)],
            });
            continue;
        }
        let Some(current) = out.last_mut() else {
            return Err((
                number,
                "indented line with no statement before it".to_owned(),
            ));
        };
        current.text.push('\n');
        current.lines.push((current.text.len(), number));
        current.text.push_str(line);
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Dollar,
    Quoted(String),
    Word(String),
}

struct Token {
    kind: Tok,
    line: usize,
}

fn tokenize(statement: &Statement) -> Result<Vec<Token>, (usize, String)> {
    let mut tokens = Vec::new();
    let mut chars = statement.text.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let line = statement.line_at(offset);
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::Open,
            ')' => Tok::Close,
            '$' => Tok::Dollar,
            '\'' => {
                let mut bytes = Vec::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\'' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            // RFC 4512 escapes are \27 and \5C; accept any hex pair, and
                            // \' or \\ as some hand-written files use.
                            let mut lookahead = chars.clone();
                            let hex: Option<u8> = match (lookahead.next(), lookahead.next()) {
                                (Some((_, a)), Some((_, b))) => {
                                    match (a.to_digit(16), b.to_digit(16)) {
                                        (Some(a), Some(b)) => u8::try_from(a * 16 + b).ok(),
                                        _ => None,
                                    }
                                }
                                _ => None,
                            };
                            if let Some(byte) = hex {
                                bytes.push(byte);
                                chars = lookahead;
                            } else if let Some((_, next)) =
                                chars.next_if(|(_, n)| *n == '\'' || *n == '\\')
                            {
                                bytes.push(next as u8);
                            } else {
                                bytes.push(b'\\');
                            }
                        }
                        c => {
                            let mut buffer = [0; 4];
                            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                        }
                    }
                }
                if !closed {
                    return Err((line, "unterminated quoted string".to_owned()));
                }
                let text = String::from_utf8(bytes)
                    .map_err(|_| (line, "quoted string escapes to invalid UTF-8".to_owned()))?;
                Tok::Quoted(text)
            }
            c => {
                let mut word = String::from(c);
                while let Some((_, next)) = chars
                    .next_if(|(_, n)| !n.is_whitespace() && !matches!(n, '(' | ')' | '$' | '\''))
                {
                    word.push(next);
                }
                Tok::Word(word)
            }
        };
        tokens.push(Token { kind, line });
    }
    Ok(tokens)
}

/// A parenthesized RFC 4512 description, not yet interpreted.
struct Description {
    oid: String,
    line: usize,
    fields: Vec<Field>,
}

struct Field {
    /// Uppercased: files in the wild are not consistent about keyword case.
    keyword: String,
    line: usize,
    value: Value,
}

enum Value {
    Flag,
    /// Names or OIDs: `word` or `( word $ word )`.
    Words(Vec<String>),
    /// Quoted strings: `'text'` or `( 'text' 'text' )`.
    Strings(Vec<String>),
}

/// The shape of each keyword's value, for every RFC 4512 description kind.
fn keyword_shape(keyword: &str) -> Option<Shape> {
    Some(match keyword {
        "NAME" => Shape::Strings,
        "DESC" => Shape::String,
        "OBSOLETE"
        | "SINGLE-VALUE"
        | "COLLECTIVE"
        | "NO-USER-MODIFICATION"
        | "ABSTRACT"
        | "STRUCTURAL"
        | "AUXILIARY" => Shape::Flag,
        "SUP" | "MUST" | "MAY" | "APPLIES" | "AUX" | "NOT" => Shape::Words,
        "EQUALITY" | "ORDERING" | "SUBSTR" | "SYNTAX" | "USAGE" => Shape::Word,
        keyword if keyword.starts_with("X-") && keyword.len() > 2 => Shape::Strings,
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Shape {
    Flag,
    Word,
    Words,
    String,
    Strings,
}

fn parse_description(
    tokens: &[Token],
    statement_line: usize,
) -> Result<Description, (usize, String)> {
    let mut rest = tokens.iter().peekable();
    match rest.next() {
        Some(Token {
            kind: Tok::Open, ..
        }) => {}
        Some(token) => return Err((token.line, "expected '(' to open the definition".to_owned())),
        None => {
            return Err((
                statement_line,
                "missing definition after the keyword".to_owned(),
            ));
        }
    }
    let (oid, line) = match rest.next() {
        Some(Token {
            kind: Tok::Word(word),
            line,
        }) => (word.clone(), *line),
        Some(token) => return Err((token.line, "expected an OID after '('".to_owned())),
        None => return Err((statement_line, "definition ends after '('".to_owned())),
    };
    let mut fields = Vec::new();
    loop {
        let Some(token) = rest.next() else {
            return Err((
                statement_line,
                "definition is not closed with ')'".to_owned(),
            ));
        };
        let keyword = match &token.kind {
            Tok::Close => break,
            Tok::Word(word) => word.to_ascii_uppercase(),
            _ => {
                return Err((
                    token.line,
                    "expected a keyword such as NAME, SUP or MAY".to_owned(),
                ));
            }
        };
        let Some(shape) = keyword_shape(&keyword) else {
            return Err((token.line, format!("unknown keyword '{keyword}'")));
        };
        let value = match shape {
            Shape::Flag => Value::Flag,
            Shape::Word => match rest.next() {
                Some(Token {
                    kind: Tok::Word(word) | Tok::Quoted(word),
                    ..
                }) => Value::Words(vec![word.clone()]),
                _ => return Err((token.line, format!("{keyword} needs a value"))),
            },
            Shape::String => match rest.next() {
                Some(Token {
                    kind: Tok::Quoted(text),
                    ..
                }) => Value::Strings(vec![text.clone()]),
                _ => return Err((token.line, format!("{keyword} needs a quoted string"))),
            },
            Shape::Words => Value::Words(words(&mut rest, token.line, &keyword)?),
            Shape::Strings => Value::Strings(strings(&mut rest, token.line, &keyword)?),
        };
        fields.push(Field {
            keyword,
            line: token.line,
            value,
        });
    }
    if let Some(extra) = rest.next() {
        return Err((
            extra.line,
            "unexpected text after the closing ')'".to_owned(),
        ));
    }
    Ok(Description { oid, line, fields })
}

/// `word` or `( word $ word ... )`; the `$` separators are optional, as OpenLDAP allows.
fn words<'a>(
    rest: &mut std::iter::Peekable<std::slice::Iter<'a, Token>>,
    line: usize,
    keyword: &str,
) -> Result<Vec<String>, (usize, String)> {
    match rest.next() {
        Some(Token {
            kind: Tok::Word(word) | Tok::Quoted(word),
            ..
        }) => Ok(vec![word.clone()]),
        Some(Token {
            kind: Tok::Open, ..
        }) => {
            let mut out = Vec::new();
            let mut expect_word = true;
            loop {
                match rest.next() {
                    Some(Token {
                        kind: Tok::Close,
                        line,
                    }) => {
                        if out.is_empty() || expect_word {
                            return Err((
                                *line,
                                format!("{keyword} list is empty or ends with '$'"),
                            ));
                        }
                        return Ok(out);
                    }
                    Some(Token {
                        kind: Tok::Dollar,
                        line,
                    }) => {
                        if expect_word {
                            return Err((*line, format!("unexpected '$' in {keyword} list")));
                        }
                        expect_word = true;
                    }
                    Some(Token {
                        kind: Tok::Word(word) | Tok::Quoted(word),
                        ..
                    }) => {
                        out.push(word.clone());
                        expect_word = false;
                    }
                    Some(Token {
                        kind: Tok::Open,
                        line,
                    }) => {
                        return Err((*line, format!("unexpected '(' in {keyword} list")));
                    }
                    None => return Err((line, format!("{keyword} list is not closed with ')'"))),
                }
            }
        }
        _ => Err((
            line,
            format!("{keyword} needs a name or a parenthesized list"),
        )),
    }
}

/// `'text'` or `( 'text' 'text' ... )`.
fn strings<'a>(
    rest: &mut std::iter::Peekable<std::slice::Iter<'a, Token>>,
    line: usize,
    keyword: &str,
) -> Result<Vec<String>, (usize, String)> {
    match rest.next() {
        Some(Token {
            kind: Tok::Quoted(text),
            ..
        }) => Ok(vec![text.clone()]),
        Some(Token {
            kind: Tok::Open, ..
        }) => {
            let mut out = Vec::new();
            loop {
                match rest.next() {
                    Some(Token {
                        kind: Tok::Close, ..
                    }) => return Ok(out),
                    Some(Token {
                        kind: Tok::Quoted(text),
                        ..
                    }) => out.push(text.clone()),
                    Some(token) => {
                        return Err((
                            token.line,
                            format!("{keyword} list takes only quoted strings"),
                        ));
                    }
                    None => return Err((line, format!("{keyword} list is not closed with ')'"))),
                }
            }
        }
        _ => Err((
            line,
            format!("{keyword} needs a quoted string or a parenthesized list"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect()
    }

    fn shipped() -> Schema {
        match Schema::shipped() {
            Ok(schema) => schema,
            Err(error) => panic!("shipped schema must load: {error}"),
        }
    }

    fn load_err(schema: Schema, name: &str, text: &str) -> String {
        match schema.with_files(&files(&[(name, text)])) {
            Ok(_) => panic!("{name} should not load"),
            Err(error) => error.to_string(),
        }
    }

    fn attr<'a>(schema: &'a Schema, name: &str) -> &'a AttributeType {
        schema
            .attribute(name)
            .unwrap_or_else(|| panic!("attribute {name} missing"))
    }

    fn class<'a>(schema: &'a Schema, name: &str) -> &'a ObjectClass {
        schema
            .object_class(name)
            .unwrap_or_else(|| panic!("class {name} missing"))
    }

    #[test]
    fn shipped_schema_has_the_key_definitions() {
        let schema = shipped();
        assert!(schema.attributes().count() > 100);
        assert!(schema.object_classes().count() > 20);

        let posix_group = class(&schema, "posixGroup");
        assert_eq!(posix_group.kind, ClassKind::Auxiliary);
        assert_eq!(posix_group.must, ["gidNumber"]);
        assert!(posix_group.may.contains(&"memberUid".to_owned()));
        assert_eq!(class(&schema, "posixAccount").kind, ClassKind::Auxiliary);
        assert_eq!(class(&schema, "shadowAccount").kind, ClassKind::Auxiliary);

        let group = class(&schema, "groupOfNames");
        assert_eq!(group.must, ["cn"]);
        assert!(group.may.contains(&"member".to_owned()));
        assert_eq!(class(&schema, "groupOfUniqueNames").must, ["cn"]);

        for operational in [
            "memberOf",
            "entryUUID",
            "entryDN",
            "createTimestamp",
            "modifyTimestamp",
            "creatorsName",
            "modifiersName",
            "structuralObjectClass",
            "hasSubordinates",
            "subschemaSubentry",
            "namingContexts",
            "supportedControl",
            "supportedExtension",
            "supportedFeatures",
            "supportedLDAPVersion",
            "supportedSASLMechanisms",
            "altServer",
            "vendorName",
            "vendorVersion",
            "defaultNamingContext",
            "attributeTypes",
            "objectClasses",
            "ldapSyntaxes",
            "matchingRules",
            "matchingRuleUse",
            "pwdChangedTime",
        ] {
            assert!(attr(&schema, operational).is_operational(), "{operational}");
        }
        let member_of = attr(&schema, "memberof");
        assert_eq!(member_of.oid, "1.2.840.113556.1.2.102");
        assert_eq!(member_of.usage, Usage::DsaOperation);
        assert_eq!(
            member_of.equality,
            Some(MatchingRule::DistinguishedNameMatch)
        );
        assert!(member_of.no_user_modification);
        let uuid = attr(&schema, "entryUUID");
        assert_eq!(uuid.equality, Some(MatchingRule::UuidMatch));
        assert_eq!(uuid.ordering, Some(MatchingRule::UuidOrderingMatch));
        assert_eq!(uuid.syntax, Syntax::Uuid);
        assert!(uuid.single_value && uuid.no_user_modification);

        for user in [
            "cn",
            "uid",
            "mail",
            "objectClass",
            "distinguishedName",
            "member",
            "sshPublicKey",
        ] {
            assert!(!attr(&schema, user).is_operational(), "{user}");
        }

        for numeric in [
            "uidNumber",
            "gidNumber",
            "shadowLastChange",
            "shadowMax",
            "shadowExpire",
        ] {
            let a = attr(&schema, numeric);
            assert_eq!(a.equality, Some(MatchingRule::IntegerMatch), "{numeric}");
            assert_eq!(
                a.ordering,
                Some(MatchingRule::IntegerOrderingMatch),
                "{numeric}"
            );
            assert_eq!(a.syntax, Syntax::Integer, "{numeric}");
        }
        let mail = attr(&schema, "rfc822Mailbox");
        assert_eq!(mail.name(), "mail");
        assert_eq!(mail.equality, Some(MatchingRule::CaseIgnoreIa5Match));
        assert_eq!(
            mail.substr,
            Some(MatchingRule::CaseIgnoreIa5SubstringsMatch)
        );
        assert_eq!(mail.syntax, Syntax::Ia5String);
        let member_uid = attr(&schema, "memberUid");
        assert_eq!(member_uid.equality, Some(MatchingRule::CaseExactIa5Match));
        assert_eq!(
            attr(&schema, "homeDirectory").equality,
            Some(MatchingRule::CaseExactIa5Match)
        );
        assert_eq!(
            attr(&schema, "userPassword").equality,
            Some(MatchingRule::OctetStringMatch)
        );
        assert_eq!(
            attr(&schema, "uniqueMember").equality,
            Some(MatchingRule::UniqueMemberMatch)
        );
        assert_eq!(attr(&schema, "2.5.4.3").name(), "cn");
        assert_eq!(attr(&schema, "DomainComponent").name(), "dc");
        assert!(schema.attribute("2.5.4.3 ").is_none());
        assert!(schema.attribute("cn;lang-en").is_none());

        let token = class(&schema, "tesseraApiToken");
        assert_eq!(token.kind, ClassKind::Structural);
        assert_eq!(token.must, ["tokenId"]);
        assert!(
            token
                .oid
                .starts_with("2.25.235497813471364094925541187040296631981.")
        );
        assert_eq!(class(&schema, "tesseraServiceAccount").must, ["uid"]);
        assert!(
            class(&schema, "tesseraRole")
                .may
                .contains(&"roleWriteDeny".to_owned())
        );
        assert_eq!(
            attr(&schema, "tokenLastUsed").ordering,
            Some(MatchingRule::GeneralizedTimeOrderingMatch)
        );
        assert!(attr(&schema, "tokenId").single_value);
        assert!(!attr(&schema, "roleRight").single_value);
    }

    #[test]
    fn every_class_reference_resolves() {
        let schema = shipped();
        for class in schema.object_classes() {
            for name in class.must.iter().chain(&class.may) {
                assert!(schema.attribute(name).is_some(), "{}: {name}", class.name());
            }
            for sup in &class.sup {
                assert!(
                    schema.object_class(sup).is_some(),
                    "{}: {sup}",
                    class.name()
                );
            }
            if class.oid != TOP_OID {
                assert!(
                    schema
                        .superclasses(class.name())
                        .iter()
                        .any(|c| c.name() == "top"),
                    "{} does not reach top",
                    class.name()
                );
            }
        }
        for attribute in schema.attributes() {
            if let Some(sup) = &attribute.sup {
                assert!(
                    schema.attribute(sup).is_some(),
                    "{}: {sup}",
                    attribute.name()
                );
            }
        }
    }

    #[test]
    fn matching_rules_and_syntax_are_inherited() {
        let schema = shipped();
        let surname = attr(&schema, "surname");
        assert_eq!(surname.name(), "sn");
        assert_eq!(surname.sup.as_deref(), Some("name"));
        assert_eq!(surname.equality, Some(MatchingRule::CaseIgnoreMatch));
        assert_eq!(
            surname.substr,
            Some(MatchingRule::CaseIgnoreSubstringsMatch)
        );
        assert_eq!(surname.syntax, Syntax::DirectoryString);
        let member = attr(&schema, "member");
        assert_eq!(member.equality, Some(MatchingRule::DistinguishedNameMatch));
        assert_eq!(member.syntax, Syntax::Dn);
        let names: Vec<&str> = schema.subtypes("name").iter().map(|a| a.name()).collect();
        for expected in ["name", "cn", "sn", "givenName", "o", "ou", "l", "title"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert!(!names.contains(&"uid"));
    }

    #[test]
    fn superclasses_walk_the_chain_once() {
        let schema = shipped();
        let chain: Vec<&str> = schema
            .superclasses("INETORGPERSON")
            .iter()
            .map(|c| c.name())
            .collect();
        assert_eq!(
            chain,
            ["inetOrgPerson", "organizationalPerson", "person", "top"]
        );
        let diamond = schema
            .with_files(&files(&[(
                "diamond.schema",
                "objectclass ( 1.1.1 NAME 'a' SUP top AUXILIARY )\n\
                 objectclass ( 1.1.2 NAME 'b' SUP a AUXILIARY )\n\
                 objectclass ( 1.1.3 NAME 'c' SUP a AUXILIARY )\n\
                 objectclass ( 1.1.4 NAME 'd' SUP ( b $ c ) AUXILIARY )\n",
            )]))
            .unwrap_or_else(|e| panic!("{e}"));
        let chain: Vec<&str> = diamond.superclasses("d").iter().map(|c| c.name()).collect();
        assert_eq!(chain, ["d", "b", "a", "top", "c"]);
        assert!(diamond.superclasses("nope").is_empty());
    }

    #[test]
    fn subschema_values_reparse() {
        let schema = shipped();
        let values = schema.subschema_values();
        let keys: Vec<&str> = values.iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            [
                "attributeTypes",
                "objectClasses",
                "ldapSyntaxes",
                "matchingRules",
                "matchingRuleUse"
            ]
        );
        let mut text = String::new();
        for (key, definitions) in &values {
            assert!(!definitions.is_empty(), "{key}");
            for definition in definitions {
                // Every value parses as a generic description...
                let statement = Statement {
                    text: definition.clone(),
                    lines: vec![(0, 1)],
                };
                let tokens = tokenize(&statement).unwrap_or_else(|e| panic!("{definition}: {e:?}"));
                parse_description(&tokens, 1).unwrap_or_else(|e| panic!("{definition}: {e:?}"));
                // ...and no DESC or extension contains a keyword that splits naive parsers
                // (python-ldap3 splits descriptions on ' NAME ', ' SUP ' and so on).
                let quoted: Vec<&str> = definition.split('\'').skip(1).step_by(2).collect();
                for part in quoted {
                    for keyword in [
                        " NAME ",
                        " DESC ",
                        " SUP ",
                        " MUST ",
                        " MAY ",
                        " SYNTAX ",
                        " USAGE ",
                        " X-",
                        " E-",
                        " OBSOLETE",
                        " AUXILIARY",
                        " STRUCTURAL",
                        " ABSTRACT",
                        " EQUALITY ",
                        " ORDERING ",
                        " SUBSTR ",
                        " SINGLE-VALUE",
                        " COLLECTIVE",
                        " NO-USER-MODIFICATION",
                        " APPLIES ",
                    ] {
                        assert!(!format!(" {part} ").contains(keyword), "{definition}");
                    }
                }
            }
            let statement = match *key {
                "attributeTypes" => "attributetype",
                "objectClasses" => "objectclass",
                _ => continue,
            };
            for definition in definitions {
                text.push_str(&format!("{statement} {definition}\n"));
            }
        }
        // ...and the attribute types and classes load back into an identical schema.
        let reloaded = Schema::default()
            .with_files(&files(&[("subschema", &text)]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reloaded.attributes, schema.attributes);
        assert_eq!(reloaded.classes, schema.classes);
        let uses = &values[4].1;
        assert!(uses.iter().any(|u| {
            u.starts_with("( 2.5.13.14 NAME 'integerMatch' APPLIES ( uidNumber $ gidNumber")
        }));
        let entry_uuid = values[0]
            .1
            .iter()
            .find(|d| d.contains("'entryUUID'"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            entry_uuid,
            "( 1.3.6.1.1.16.4 NAME 'entryUUID' DESC 'UUID of the entry' EQUALITY UUIDMatch ORDERING UUIDOrderingMatch SYNTAX 1.3.6.1.1.16.1 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )"
        );
    }

    #[test]
    fn admin_drop_in_with_macros_and_openldap_syntax() {
        let sudo_like = "\
# A drop-in in the style of sudo.schema, with OpenLDAP-isms.
objectidentifier ExampleRoot 1.3.6.1.4.1.99999
objectIdentifier ExampleAttr ExampleRoot:1
objectidentifier ExampleClass ExampleRoot:2

attributetype ( ExampleAttr:1
    NAME 'exampleUser'
    DESC 'User(s) who may  run things'
    EQUALITY caseExactIA5Match
    SUBSTR caseExactIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256}
    X-ORIGIN 'example' )
# a comment inside the file
attributetype ( ExampleAttr:2 NAME ( 'exampleNotBefore' 'exampleStart' )
\tEQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch
\tSYNTAX '1.3.6.1.4.1.1466.115.121.1.24' single-value
\tX-ORIGIN ( 'example' 'test' ) )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'exampleAlias' SUP exampleUser DESC 'it\\27s \\5C' )
objectclass ( ExampleClass:1 NAME 'exampleRole' SUP top STRUCTURAL
    DESC 'Example role'
    MUST ( cn )
    MAY ( exampleUser $ exampleNotBefore $ description $ ExampleAlias ) )
objectclass ( ExampleClass:2 NAME 'exampleAux' AUXILIARY MAY ( exampleStart $ exampleNotBefore ) )
";
        let schema = shipped()
            .with_files(&files(&[("sudo.schema", sudo_like)]))
            .unwrap_or_else(|e| panic!("{e}"));
        let user = attr(&schema, "exampleuser");
        assert_eq!(user.oid, "1.3.6.1.4.1.99999.1.1");
        assert_eq!(user.syntax, Syntax::Ia5String);
        assert_eq!(user.syntax_len, Some(256));
        assert_eq!(user.desc.as_deref(), Some("User(s) who may  run things"));
        assert_eq!(
            user.extensions,
            [("X-ORIGIN".to_owned(), vec!["example".to_owned()])]
        );
        let start = attr(&schema, "exampleStart");
        assert_eq!(start.name(), "exampleNotBefore");
        assert!(start.single_value);
        assert_eq!(start.syntax, Syntax::GeneralizedTime);
        let alias = attr(&schema, "exampleAlias");
        assert_eq!(alias.equality, Some(MatchingRule::CaseExactIa5Match));
        assert_eq!(alias.syntax_len, Some(256));
        assert_eq!(alias.desc.as_deref(), Some("it's \\"));
        let role = class(&schema, "exampleRole");
        assert_eq!(role.oid, "1.3.6.1.4.1.99999.2.1");
        assert_eq!(
            role.may,
            [
                "exampleUser",
                "exampleNotBefore",
                "description",
                "exampleAlias"
            ]
        );
        assert_eq!(class(&schema, "exampleAux").sup, ["top"], "top is implied");
        assert_eq!(
            class(&schema, "exampleAux").may,
            ["exampleNotBefore"],
            "aliases collapse"
        );
        assert!(alias.to_string().contains("DESC 'it\\27s \\5C'"));
    }

    #[test]
    fn load_dir_reads_sorted_schema_files() {
        let dir = std::env::temp_dir().join(format!("tessera-schema-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"))
        };
        // b uses a macro from a, so the sort order matters.
        write(
            "b.schema",
            "attributetype ( Local:2 NAME 'localB' SUP localA )\n",
        );
        write(
            "a.schema",
            "objectidentifier Local 1.3.6.1.4.1.99998\nattributetype ( Local:1 NAME 'localA' SUP name )\n",
        );
        write("ignored.txt", "this is not a schema file (\n");
        let schema = shipped().load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            attr(&schema, "localB").equality,
            Some(MatchingRule::CaseIgnoreMatch)
        );
        write(
            "c.schema",
            "attributetype ( 1.3.6.1.4.1.99998.3 NAME 'localC' SUP nope )\n",
        );
        let error = shipped()
            .load_dir(&dir)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(
                "c.schema:1: attributetype localC: unknown superior attribute type 'nope' in SUP"
            ),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let missing = shipped().load_dir(&dir).map(|_| ()).unwrap_err();
        assert!(matches!(missing, SchemaError::Io { .. }));
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "objectclass ( 1.1.1 NAME 'x' AUXILIARY\n  MUST gidNumber\n  MAY ( memberUid $ memberUidd ) )\n",
                "drop.schema:3: objectclass x: unknown attribute type 'memberUidd' in MAY",
            ),
            (
                "\n\nattributetype ( 1.1.1 NAME 'x' EQUALITY fooMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
                "drop.schema:3: attributetype x: unknown matching rule 'fooMatch' in EQUALITY",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x'\n SYNTAX 1.2.3.4 )",
                "drop.schema:2: attributetype x: unknown syntax '1.2.3.4' in SYNTAX",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' ORDERING caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
                "drop.schema:1: attributetype x: caseIgnoreMatch is not an ordering rule, so it cannot be used in ORDERING",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' )",
                "drop.schema:1: attributetype x: has neither SYNTAX nor SUP",
            ),
            (
                "attributetype ( 2.5.4.3 NAME 'myCn' SUP name )",
                "drop.schema:1: attributetype myCn: OID 2.5.4.3 is already used by attributetype cn (core.schema:",
            ),
            (
                "attributetype ( 1.1.1 NAME 'CN' SUP name )",
                "drop.schema:1: attributetype CN: name 'CN' is already used by attributetype cn (core.schema:",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name )\nattributetype ( 1.1.1 NAME 'y' SUP name )",
                "drop.schema:2: attributetype y: OID 1.1.1 is already used by attributetype x (drop.schema:1)",
            ),
            (
                "attributetype ( 2.5.13.2 NAME 'x' SUP name )",
                "drop.schema:1: attributetype x: OID 2.5.13.2 is already used by matching rule caseIgnoreMatch",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP y )\nattributetype ( 1.1.2 NAME 'y' SUP x )",
                "drop.schema:2: attributetype y: superior attribute type 'x' leads back to itself",
            ),
            (
                "objectclass ( 1.1.1 NAME 'x' SUP y AUXILIARY )\nobjectclass ( 1.1.2 NAME 'y' SUP x AUXILIARY )",
                "drop.schema:1: objectclass x: its superclasses lead back to itself",
            ),
            (
                "objectclass ( 1.1.1 NAME 'x' SUP posixAccount STRUCTURAL )",
                "drop.schema:1: objectclass x: a STRUCTURAL class cannot have the AUXILIARY superclass 'posixAccount' (RFC 4512 2.4)",
            ),
            (
                "objectclass ( 1.1.1 NAME 'x' SUP nope )",
                "drop.schema:1: objectclass x: unknown superclass 'nope' in SUP",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name NO-USER-MODIFICATION )",
                "drop.schema:1: attributetype x: NO-USER-MODIFICATION requires an operational USAGE",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name USAGE dSAOperation )",
                "drop.schema:1: attributetype x: USAGE dSAOperation differs from its superior name's USAGE userApplications",
            ),
            (
                "attributetype ( Nope:1 NAME 'x' SUP name )",
                "drop.schema:1: attributetype x: 'Nope:1' is neither a numeric OID nor a defined objectidentifier macro",
            ),
            (
                "objectidentifier A 1.1\nobjectidentifier A 1.2",
                "drop.schema:2: objectidentifier A: already defined as 1.1, cannot redefine as 1.2",
            ),
            (
                "attributetype ( 1.1.1 NAME 'bad_name' SUP name )",
                "drop.schema:1: attributetype bad_name: 'bad_name' is not a valid name",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name SUP cn )",
                "drop.schema:1: attributetype x: SUP is given twice",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name MUST cn )",
                "drop.schema:1: attributetype x: MUST is not allowed in an attribute type",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name USAGE sometimes )",
                "drop.schema:1: attributetype x: unknown USAGE 'sometimes'",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x'\n  DESC 'unterminated )\n",
                "drop.schema:2: unterminated quoted string",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x'\n  SUP name\n",
                "drop.schema:1: definition is not closed with ')'",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' FOO bar )",
                "drop.schema:1: unknown keyword 'FOO'",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SUP name ) trailing",
                "drop.schema:1: unexpected text after the closing ')'",
            ),
            (
                "  attributetype ( 1.1.1 NAME 'x' SUP name )",
                "drop.schema:1: indented line with no statement before it",
            ),
            (
                "ditcontentrule ( 1.1.1 NAME 'x' )",
                "drop.schema:1: unsupported statement 'ditcontentrule'",
            ),
            (
                "attributetype 1.1.1 NAME 'x'",
                "drop.schema:1: expected '(' to open the definition",
            ),
            (
                "objectclass ( 1.1.1 NAME 'x' MAY ( cn $ ) )",
                "drop.schema:1: MAY list is empty or ends with '$'",
            ),
            (
                "objectclass ( 1.1.1 NAME 'x' ABSTRACT AUXILIARY )",
                "drop.schema:1: objectclass x: more than one of ABSTRACT, STRUCTURAL, AUXILIARY",
            ),
            (
                "attributetype ( 1.1.1 NAME 'x' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{12 )",
                "drop.schema:1: attributetype x: malformed length in SYNTAX",
            ),
        ];
        for (text, expected) in cases {
            let error = load_err(shipped(), "drop.schema", text);
            assert!(
                error.starts_with(expected),
                "\n  got:      {error}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn redefining_shipped_definitions_fails() {
        for (name, text) in SHIPPED {
            let error = load_err(shipped(), name, text);
            assert!(error.contains("is already used by"), "{error}");
        }
    }

    #[test]
    fn arbitrary_and_truncated_input_never_panics() {
        let mut inputs: Vec<String> = Vec::new();
        for (_, text) in SHIPPED {
            let step = (text.len() / 60).max(1);
            for end in (0..text.len()).step_by(step) {
                if let Some(prefix) = text.get(..end) {
                    inputs.push(prefix.to_owned());
                }
                if let Some(suffix) = text.get(end..) {
                    inputs.push(suffix.to_owned());
                }
            }
        }
        let pieces = [
            "attributetype",
            "objectclass",
            "objectidentifier",
            "(",
            ")",
            "$",
            "'",
            "\\",
            "\\2",
            "\\27",
            "NAME",
            "SUP",
            "MUST",
            "MAY",
            "SYNTAX",
            "EQUALITY",
            "X-ORIGIN",
            "1.1.1",
            "Foo:1",
            "Foo",
            "cn",
            "top",
            "{",
            "}",
            "{9999999999999999999999}",
            "\n",
            "\n ",
            "\n#",
            " ",
            "\t",
            "é",
            "\u{0}",
            "caseIgnoreMatch",
            "1.3.6.1.4.1.1466.115.121.1.15",
            "AUXILIARY",
            "USAGE",
            "dSAOperation",
        ];
        let mut seed: u64 = 42;
        for _ in 0..400 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for _ in 0..(seed >> 58) + 1 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
                text.push(' ');
            }
            inputs.push(text);
        }
        assert!(inputs.len() > 500);
        let base = shipped();
        for input in &inputs {
            let _ = Schema::default().with_files(&files(&[("fuzz.schema", input)]));
            let _ = base.clone().with_files(&files(&[("fuzz.schema", input)]));
        }
    }

    #[test]
    fn every_file_in_the_schema_folder_is_shipped_and_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".schema"))
            .collect();
        found.sort();
        assert!(found.len() >= 6, "schema files found: {found:?}");
        let mut shipped: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
        shipped.sort();
        assert_eq!(
            found, shipped,
            "every file in schema/ is embedded in the binary"
        );
        // The files on disk are the ones embedded, and load on their own.
        let from_disk = Schema::default().load_dir(&dir).unwrap();
        assert_eq!(
            from_disk.attributes().count(),
            Schema::shipped().unwrap().attributes().count()
        );
    }
}
