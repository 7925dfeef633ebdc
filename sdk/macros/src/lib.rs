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

/// `#[table(name = account, public)]` (or `private`) on a struct with named fields; fields may
/// carry `#[primary_key]`, `#[unique]`, `#[index(btree)]` and `#[auto_inc]`.
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
            _ => return error(Span::call_site(), "expected `name = …`, `public` or `private`"),
        }
    }
    let Some(table) = name else { return error(Span::call_site(), "#[table] needs `name = …`") };
    let ty = input.ident.clone();
    let Data::Struct(data) = &mut input.data else { return error(Span::call_site(), "#[table] goes on a struct") };
    let Fields::Named(fields) = &mut data.fields else {
        return error(Span::call_site(), "#[table] needs a struct with named fields");
    };
    let (mut names, mut types) = (Vec::new(), Vec::new());
    let (mut pk, mut auto_inc, mut indexes) = (None, None, Vec::new());
    for f in fields.named.iter_mut() {
        let fname = f.ident.clone().expect("named field");
        let mut keep = Vec::new();
        for a in f.attrs.drain(..) {
            let p = a.path();
            if p.is_ident("primary_key") {
                pk = Some(fname.clone());
            } else if p.is_ident("unique") {
                indexes.push((fname.clone(), true));
            } else if p.is_ident("index") {
                indexes.push((fname.clone(), false));
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
    let col_json = names.iter().zip(&types).map(|(n, t)| {
        let n = n.to_string();
        quote! {
            format!("{{\"name\":\"{}\",\"type\":\"{}\",\"nullable\":{}}}", #n,
                <#t as ::sluice_sdk::Column>::TYPE, <#t as ::sluice_sdk::Column>::NULLABLE)
        }
    });
    let pk_json = pk.as_ref().map_or(String::new(), |p| format!("\"{p}\""));
    let index_json = indexes
        .iter()
        // Doubled braces: this text becomes part of a format string.
        .map(|(f, unique)| format!("{{{{\"name\":\"{f}\",\"columns\":[\"{f}\"],\"unique\":{unique}}}}}"))
        .collect::<Vec<_>>()
        .join(",");
    let auto_json = auto_inc.as_ref().map_or("null".to_string(), |a| format!("\"{a}\""));
    let head = format!("{{{{\"name\":\"{table}\",\"public\":{public},\"primary_key\":[{pk_json}],\"indexes\":[{index_json}],\"auto_inc\":{auto_json},\"columns\":[");
    let describe = format_ident!("__sluice_table__{}", table);
    let handle = format_ident!("{}Handle", ty);
    let accessor = format_ident!("{}", table);
    let index_methods = pk
        .iter()
        .map(|p| (p.clone(), "primary_key".to_string()))
        .chain(indexes.iter().map(|(f, _)| (f.clone(), f.to_string())))
        .map(|(field, index)| {
            let t = &types[names.iter().position(|n| *n == field).expect("a field")];
            let doc = format!("The `{field}` index.");
            quote! {
                #[doc = #doc]
                pub fn #field(&self) -> ::sluice_sdk::Index<#ty, #t> { self.0.index::<#t>(#index) }
            }
        });
    let out: Tokens = quote! {
        #input

        impl ::sluice_sdk::Table for #ty {
            const NAME: &'static str = #table;
            fn encode(&self) -> ::std::vec::Vec<u8> {
                let mut out = ::std::vec::Vec::new();
                #( ::sluice_sdk::Column::encode(&self.#names, &mut out); )*
                out
            }
            fn decode(bytes: &[u8]) -> Self {
                let mut r = ::sluice_sdk::Reader::new(bytes);
                #ty { #( #names: <#types as ::sluice_sdk::Column>::decode(&mut r), )* }
            }
        }

        #[no_mangle]
        pub extern "C" fn #describe() -> i64 {
            let cols: ::std::vec::Vec<String> = vec![#(#col_json),*];
            ::sluice_sdk::rt::packed_str(format!(concat!(#head, "{}]}}"), cols.join(",")))
        }

        /// The table's rows, from `ctx.db`.
        pub struct #handle(::sluice_sdk::TableHandle<#ty>);

        impl #handle {
            /// Inserts a row; returns it with generated values filled in.
            pub fn insert(&self, row: #ty) -> ::std::result::Result<#ty, String> { self.0.insert(row) }
            /// Every row.
            pub fn iter(&self) -> impl Iterator<Item = #ty> { self.0.iter() }
            pub fn count(&self) -> u64 { self.0.count() }
            #(#index_methods)*
        }

        #[allow(non_camel_case_types)]
        pub trait #accessor {
            fn #accessor(&self) -> #handle;
        }

        impl #accessor for ::sluice_sdk::Db {
            fn #accessor(&self) -> #handle { #handle(::sluice_sdk::TableHandle::new()) }
        }
    };
    out.into()
}

/// `#[reducer]` on `fn name(ctx: &ReducerContext, a: A, …)` returning `()` or `Result<(), E>`.
#[proc_macro_attribute]
pub fn reducer(_attr: TokenStream, item: TokenStream) -> TokenStream {
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
    let head = format!("{{{{\"name\":\"{name}\",\"params\":[");
    let out = quote! {
        #f

        #[no_mangle]
        pub extern "C" fn #describe() -> i64 {
            let params: ::std::vec::Vec<String> = vec![#(
                format!("{{\"name\":\"{}\",\"type\":\"{}\",\"nullable\":{}}}", #arg_names,
                    <#types as ::sluice_sdk::Column>::TYPE, <#types as ::sluice_sdk::Column>::NULLABLE)
            ),*];
            ::sluice_sdk::rt::packed_str(format!(concat!(#head, "{}]}}"), params.join(",")))
        }

        #[no_mangle]
        pub extern "C" fn #entry(ptr: *const u8, len: i32) -> i64 {
            let (ctx, #(#args,)*) = {
                // SAFETY: the host passes a buffer it wrote into this module's memory.
                let buf = unsafe { ::core::slice::from_raw_parts(ptr, len as usize) };
                let ctx = ::sluice_sdk::ReducerContext::from_header(&buf[..::sluice_sdk::ARGS_HEADER]);
                let mut _r = ::sluice_sdk::Reader::new(&buf[::sluice_sdk::ARGS_HEADER..]);
                #( let #args = <#types as ::sluice_sdk::Column>::decode(&mut _r); )*
                (ctx, #(#args,)*)
            };
            // SAFETY: the arguments are decoded into owned values; the buffer is not used again.
            unsafe { ::sluice_sdk::rt::free_args(ptr, len) };
            ::sluice_sdk::rt::finish(::sluice_sdk::ReducerResult::into_result(#name(&ctx, #(#args),*)))
        }
    };
    out.into()
}
