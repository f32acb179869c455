//! Focus on arrival: after a move to another page of the app, focus goes
//! to the new page's purpose (a field, by its id) or else its heading, so
//! that keyboard and screen-reader users start there rather than at the
//! top of the document. Once per page: the page's later renders (a list
//! reloaded) leave focus where the user put it. The first page of a visit
//! keeps the browser's own start.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, MutationObserver, MutationObserverInit};

/// How many pages of the app were shown since the visit began.
#[derive(Clone, Copy)]
struct Pages(StoredValue<u32>);

/// Counts the pages of the visit (once, in the app).
pub fn provide() {
    provide_context(Pages(StoredValue::new(0)));
}

type Watch = (MutationObserver, Closure<dyn FnMut(js_sys::Array, MutationObserver)>);

/// A page of the app. Its content may come later than the page (a
/// skeleton while it loads): focus goes there when it comes.
#[component]
pub fn Arrival(
    children: Children,
    /// The id of the field the page is for; its heading (`h1`) otherwise.
    #[prop(optional)]
    field: Option<&'static str>,
) -> impl IntoView {
    let pages = expect_context::<Pages>().0;
    let arrived = pages.try_update_value(|n| {
        *n += 1;
        *n > 1
    });
    let root = NodeRef::<leptos::html::Div>::new();
    let watch = StoredValue::new_local(None::<Watch>);
    Effect::new(move |_| {
        let Some(root) = root.get() else { return };
        if arrived != Some(true) || focus(&root, field) {
            return;
        }
        let page = root.clone();
        let seen = Closure::<dyn FnMut(js_sys::Array, MutationObserver)>::new(move |_, observer: MutationObserver| {
            if focus(&page, field) {
                observer.disconnect();
            }
        });
        let Ok(observer) = MutationObserver::new(seen.as_ref().unchecked_ref()) else { return };
        let options = MutationObserverInit::new();
        options.set_child_list(true);
        options.set_subtree(true);
        if observer.observe_with_options(&root, &options).is_ok() {
            watch.set_value(Some((observer, seen)));
        }
    });
    on_cleanup(move || {
        if let Some((observer, _)) = watch.try_update_value(Option::take).flatten() {
            observer.disconnect();
        }
    });
    view! { <div node_ref=root>{children()}</div> }
}

/// Focuses the page's field or heading, if shown yet; `true` when done
/// (also when the user already is somewhere in the page).
fn focus(page: &HtmlElement, field: Option<&str>) -> bool {
    let active = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
    if active.is_some_and(|a| page.contains(Some(&a))) {
        return true;
    }
    let by_id = field.and_then(|id| page.query_selector(&format!("#{id}")).ok().flatten());
    let Some(target) = by_id.or_else(|| page.query_selector("h1").ok().flatten()) else { return false };
    let Ok(target) = target.dyn_into::<HtmlElement>() else { return false };
    if target.tag_name() == "H1" && !target.has_attribute("tabindex") {
        let _ = target.set_attribute("tabindex", "-1");
    }
    target.focus().is_ok()
}
