// Access reviews: the header box "All N on this page" ticks or unticks every row at once, and shows whether some,
// all or none are ticked. Without this file the header box still works: the server then takes every row the page
// showed (governance/portal/views/reviews.py, `_chosen_ids`), so the two ways mean the same thing.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const all of document.querySelectorAll("input[type=checkbox][data-selects]")) {
    const form = all.form;
    const rows = () => form.querySelectorAll(`input[type=checkbox][name="${all.dataset.selects}"]`);
    const reflect = () => {
      const ticked = [...rows()].filter((box) => box.checked).length;
      all.checked = ticked > 0 && ticked === rows().length;
      all.indeterminate = ticked > 0 && ticked < rows().length;
    };
    all.addEventListener("change", () => {
      for (const box of rows()) box.checked = all.checked;
      all.indeterminate = false;
    });
    for (const box of rows()) box.addEventListener("change", reflect);
    reflect();
  }
});
