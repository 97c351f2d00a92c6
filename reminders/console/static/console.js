// The staff console's only script: no inline script is allowed (Content-Security-Policy).
// It moves keyboard focus to the first error on a page, so screen readers announce it.
document.addEventListener("DOMContentLoaded", function () {
  var alert = document.querySelector("[role=alert]");
  if (alert) {
    alert.setAttribute("tabindex", "-1");
    alert.focus();
  }
});
