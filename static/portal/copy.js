// Copy buttons: <button class="copy" data-copy-text="…"> copies its text, <button class="copy" data-copy-target="id">
// the text of the element with that id. The buttons start hidden and appear only where the clipboard can be written
// (a secure context), so nobody is offered a button that does nothing. The outcome is announced in the page's
// status region, never by changing the button's visible text (its accessible name must keep containing it).
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) {
    return;
  }
  var status = document.getElementById("copy-status");
  function announce(message) {
    if (status) {
      status.textContent = "";
      window.setTimeout(function () { status.textContent = message; }, 50);
    }
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = button.dataset.copyTarget ? document.getElementById(button.dataset.copyTarget) : null;
      var text = target ? target.textContent : button.dataset.copyText;
      if (text === undefined || text === null) {
        return;
      }
      navigator.clipboard.writeText(text.trim()).then(
        function () {
          button.classList.add("copied");
          announce("Copied " + (button.dataset.copyWhat || "") + " to the clipboard.");
          window.setTimeout(function () { button.classList.remove("copied"); }, 1500);
        },
        function () { announce("The browser did not allow copying: select the text and copy it instead."); }
      );
    });
  });
})();
