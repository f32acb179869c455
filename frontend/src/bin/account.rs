fn main() {
    leptos::mount::mount_to_body(passgate_frontend::account::AccountApp);
}
