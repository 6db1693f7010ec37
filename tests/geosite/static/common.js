// Cookie banner (like OneTrust on the real site): it stays until accepted, on every page.
(() => {
  const accept = document.getElementById("onetrust-accept-btn-handler");
  if (!accept) return;
  accept.addEventListener("click", () => {
    document.cookie = "OptanonAlertBoxClosed=" + new Date().toISOString() + "; path=/; max-age=31536000";
    document.getElementById("onetrust-banner-sdk").remove();
  });
})();
