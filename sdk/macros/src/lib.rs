//! `#[table]` and `#[reducer]`: generate a module's exports (descriptions and reducer entry
//! points of the host ABI) and typed table handles from plain Rust items.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Data, DeriveInput, Expr, Fields, FnArg, ItemFn, Meta, Pat, Token};

fn error(span: Span, msg: &str) -> TokenStream {
    syn::Error::new(span, msg).to_compile_error().into()
}

/// The identifiers of `columns = [a, b]`.
fn column_list(meta: &Meta) -> Option<Vec<syn::Ident>> {
    let Meta::List(list) = meta else { return None };
    let inner = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated).ok()?;
    let Some(Meta::NameValue(nv)) = inner.first() else { return None };
    let Expr::Array(arr) = &nv.value else { return None };
    if !nv.path.is_ident("columns") || arr.elems.is_empty() {
        return None;
    }
    arr.elems
        .iter()
        .map(|e| match e {
            Expr::Path(p) => p.path.get_ident().cloned(),
            _ => None,
        })
        .collect()
}

/// `index(name = by_xy, btree(columns = [x, y]))` (or `unique(columns = […])`): the index's
/// name, columns and whether it is unique.
fn multi_index(meta: &Meta) -> Option<(syn::Ident, Vec<syn::Ident>, bool)> {
    let Meta::List(list) = meta else { return None };
    let parts = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated).ok()?;
    let (mut name, mut spec) = (None, None);
    for part in &parts {
        match part {
            Meta::NameValue(nv) if nv.path.is_ident("name") => match &nv.value {
                Expr::Path(p) => name = p.path.get_ident().cloned(),
                _ => return None,
            },
            m if m.path().is_ident("btree") => spec = Some((column_list(m)?, false)),
            m if m.path().is_ident("unique") => spec = Some((column_list(m)?, true)),
            _ => return None,
        }
    }
    let (columns, unique) = spec?;
    Some((name?, columns, unique))
}

/// `#[table(name = account, public)]` (or `private`) on a struct with named fields; fields may
/// carry `#[primary_key]`, `#[unique]`, `#[index(btree)]` and `#[auto_inc]`. Further
/// arguments: `index(name = by_xy, btree(columns = [x, y]))` declares an index over several
/// columns, and `scheduled(reducer)` makes a schedule table, whose rows (with `scheduled_at`
/// and `repeat_micros` columns) each run `reducer` when due.
#[proc_macro_attribute]
pub fn table(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match Punctuated::<Meta, Token![,]>::parse_terminated.parse(attr) {
        Ok(a) => a,
        Err(e) => return e.to_compile_error().into(),
    };
    let mut input: DeriveInput = match syn::parse(item) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error().into(),
    };
    let mut name = None;
    let mut public = true;
    let mut scheduled = None;
    // Indexes as (method and index name, columns, unique).
    let mut indexes: Vec<(syn::Ident, Vec<syn::Ident>, bool)> = Vec::new();
    for a in &args {
        match a {
            Meta::NameValue(nv) if nv.path.is_ident("name") => {
                name = Some(match &nv.value {
                    Expr::Path(p) => p.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("_"),
                    Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => s.value(),
                    _ => return error(Span::call_site(), "`name` must be an identifier"),
                })
            }
            Meta::Path(p) if p.is_ident("public") => public = true,
            Meta::Path(p) if p.is_ident("private") => public = false,
            Meta::List(l) if l.path.is_ident("scheduled") => match l.parse_args::<syn::Ident>() {
                Ok(r) => scheduled = Some(r.to_string()),
                Err(_) => return error(Span::call_site(), "expected `scheduled(reducer_name)`"),
            },
            m @ Meta::List(l) if l.path.is_ident("index") => match multi_index(m) {
                Some(ix) => indexes.push(ix),
                None => {
                    return error(Span::call_site(), "expected `index(name = …, btree(columns = [a, b, …]))`");
                }
            },
            _ => {
                return error(
                    Span::call_site(),
                    "expected `name = …`, `public`, `private`, `scheduled(…)` or `index(…)`",
                )
            }
        }
    }
    let Some(table) = name else { return error(Span::call_site(), "#[table] needs `name = …`") };
    let ty = input.ident.clone();
    let Data::Struct(data) = &mut input.data else { return error(Span::call_site(), "#[table] goes on a struct") };
    let Fields::Named(fields) = &mut data.fields else {
        return error(Span::call_site(), "#[table] needs a struct with named fields");
    };
    let (mut names, mut types) = (Vec::new(), Vec::new());
    let (mut pk, mut auto_inc) = (None, None);
    for f in fields.named.iter_mut() {
        let fname = f.ident.clone().expect("named field");
        let mut keep = Vec::new();
        for a in f.attrs.drain(..) {
            let p = a.path();
            if p.is_ident("primary_key") {
                pk = Some(fname.clone());
            } else if p.is_ident("unique") {
                indexes.push((fname.clone(), vec![fname.clone()], true));
            } else if p.is_ident("index") {
                indexes.push((fname.clone(), vec![fname.clone()], false));
            } else if p.is_ident("auto_inc") {
                auto_inc = Some(fname.clone());
            } else {
                keep.push(a);
            }
        }
        f.attrs = keep;
        names.push(fname);
        types.push(f.ty.clone());
    }
    let type_of = |field: &syn::Ident| names.iter().position(|n| n == field).map(|i| &types[i]);
    for (ix, columns, _) in &indexes {
        if let Some(c) = columns.iter().find(|c| type_of(c).is_none()) {
            return error(c.span(), &format!("index `{ix}` names `{c}`, which is not a field"));
        }
    }
    let col_names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let pk_json = pk.as_ref().map_or(String::new(), |p| format!("\"{p}\""));
    let index_json = indexes
        .iter()
        .map(|(ix, cols, unique)| {
            let cols: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
            format!("{{\"name\":\"{ix}\",\"columns\":[{}],\"unique\":{unique}}}", cols.join(","))
        })
        .collect::<Vec<_>>()
        .join(",");
    let auto_json = auto_inc.as_ref().map_or("null".to_string(), |a| format!("\"{a}\""));
    let sched_json = scheduled.map_or(String::new(), |r| format!(",\"scheduled\":\"{r}\""));
    let head = format!(
        "{{\"name\":\"{table}\",\"public\":{public},\"primary_key\":[{pk_json}],\"indexes\":[{index_json}],\"auto_inc\":{auto_json}{sched_json},\"columns\":["
    );
    let describe = format_ident!("__sluice_table__{}", table);
    let handle = format_ident!("{}Handle", ty);
    let accessor = format_ident!("{}", table);
    let index_methods = pk
        .iter()
        .map(|p| (p.clone(), vec![p.clone()], "primary_key".to_string()))
        .chain(indexes.iter().map(|(ix, cols, _)| (ix.clone(), cols.clone(), ix.to_string())))
        .map(|(method, cols, index)| {
            let col_types = cols.iter().map(|c| type_of(c).expect("checked"));
            let key = if cols.len() == 1 { quote!(#(#col_types)*) } else { quote!((#(#col_types,)*)) };
            let doc = format!(
                "The `{index}` index, over {}.",
                cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            );
            quote! {
                #[doc = #doc]
                pub fn #method(&self) -> ::sluice_sdk::Index<#ty, #key> {
                    static ID: ::std::sync::atomic::AtomicI32 = ::std::sync::atomic::AtomicI32::new(-1);
                    self.0.index::<#key>(#index, &ID)
                }
            }
        });
    let out: Tokens = quote! {
        #input

        impl ::sluice_sdk::Param for #ty {
            fn fields(_name: &str) -> ::std::vec::Vec<String> {
                vec![#( ::sluice_sdk::field(#col_names, <#types as ::sluice_sdk::Column>::TYPE,
                    <#types as ::sluice_sdk::Column>::NULLABLE) ),*]
            }
            fn decode_param(r: &mut ::sluice_sdk::Reader<'_>) -> Self {
                #ty { #( #names: <#types as ::sluice_sdk::Column>::decode(r), )* }
            }
        }

        impl ::sluice_sdk::Table for #ty {
            const NAME: &'static str = #table;
            fn encode(&self) -> ::std::vec::Vec<u8> {
                let mut out = ::std::vec::Vec::new();
                #( ::sluice_sdk::Column::encode(&self.#names, &mut out); )*
                out
            }
        }

        #[no_mangle]
        pub extern "C" fn #describe() -> i64 {
            let cols = <#ty as ::sluice_sdk::Param>::fields("");
            ::sluice_sdk::rt::packed_str(::std::format!("{}{}]}}", #head, cols.join(",")))
        }

        /// The table's rows, from `ctx.db`.
        pub struct #handle(::sluice_sdk::TableHandle<#ty>);

        impl #handle {
            /// Inserts a row; returns it with generated values filled in.
            pub fn insert(&self, row: #ty) -> ::std::result::Result<#ty, String> { self.0.insert(row) }
            /// Every row, a page at a time.
            pub fn iter(&self) -> ::sluice_sdk::RowIter<#ty> { self.0.iter() }
            pub fn count(&self) -> u64 { self.0.count() }
            #(#index_methods)*
        }

        #[allow(non_camel_case_types)]
        pub trait #accessor {
            fn #accessor(&self) -> #handle;
        }

        impl #accessor for ::sluice_sdk::Db {
            fn #accessor(&self) -> #handle {
                static ID: ::std::sync::atomic::AtomicI32 = ::std::sync::atomic::AtomicI32::new(-1);
                #handle(::sluice_sdk::TableHandle::new(&ID))
            }
        }
    };
    out.into()
}

/// `#[reducer]` on `fn name(ctx: &ReducerContext, a: A, …)` returning `()` or `Result<(), E>`;
/// `#[reducer(init)]`, `#[reducer(client_connected)]` and `#[reducer(client_disconnected)]`
/// mark the lifecycle reducers, which take only the context. A parameter may be a table row
/// (a scheduled reducer takes its schedule row).
#[proc_macro_attribute]
pub fn reducer(attr: TokenStream, item: TokenStream) -> TokenStream {
    let lifecycle = if attr.is_empty() {
        String::new()
    } else {
        match syn::parse::<syn::Ident>(attr).map(|i| i.to_string()) {
            Ok(role) if ["init", "client_connected", "client_disconnected"].contains(&role.as_str()) => {
                format!(",\"lifecycle\":\"{role}\"")
            }
            _ => return error(Span::call_site(), "expected `init`, `client_connected` or `client_disconnected`"),
        }
    };
    let f: ItemFn = match syn::parse(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    let name = f.sig.ident.clone();
    let mut inputs = f.sig.inputs.iter();
    if !matches!(inputs.next(), Some(FnArg::Typed(_))) {
        return error(Span::call_site(), "a reducer's first parameter is `ctx: &ReducerContext`");
    }
    let (mut args, mut types) = (Vec::new(), Vec::new());
    for a in inputs {
        let FnArg::Typed(pt) = a else { return error(Span::call_site(), "reducers take no `self`") };
        let Pat::Ident(id) = &*pt.pat else {
            return error(Span::call_site(), "reducer parameters must be plain names");
        };
        args.push(id.ident.clone());
        types.push((*pt.ty).clone());
    }
    let arg_names: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let describe = format_ident!("__sluice_describe_reducer__{}", name);
    let entry = format_ident!("__sluice_reducer__{}", name);
    let head = format!("{{\"name\":\"{name}\"{lifecycle},\"params\":[");
    let out = quote! {
        #f

        #[no_mangle]
        pub extern "C" fn #describe() -> i64 {
            let mut params: ::std::vec::Vec<String> = ::std::vec::Vec::new();
            #( params.extend(<#types as ::sluice_sdk::Param>::fields(#arg_names)); )*
            ::sluice_sdk::rt::packed_str(::std::format!("{}{}]}}", #head, params.join(",")))
        }

        #[no_mangle]
        pub extern "C" fn #entry(ptr: *const u8, len: i32) -> i64 {
            ::sluice_sdk::rt::install_panic_hook();
            let (ctx, #(#args,)*) = {
                // SAFETY: the host passes a buffer it wrote into this module's memory.
                let buf = unsafe { ::core::slice::from_raw_parts(ptr, len as usize) };
                let ctx = ::sluice_sdk::ReducerContext::from_header(&buf[..::sluice_sdk::ARGS_HEADER]);
                let mut _r = ::sluice_sdk::Reader::new(&buf[::sluice_sdk::ARGS_HEADER..]);
                #( let #args = <#types as ::sluice_sdk::Param>::decode_param(&mut _r); )*
                (ctx, #(#args,)*)
            };
            // SAFETY: the arguments are decoded into owned values; the buffer is not used again.
            unsafe { ::sluice_sdk::rt::free_args(ptr, len) };
            ::sluice_sdk::rt::finish(::sluice_sdk::ReducerResult::into_result(#name(&ctx, #(#args),*)))
        }
    };
    out.into()
}
