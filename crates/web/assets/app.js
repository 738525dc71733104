// Enhancements on top of pages that work as plain HTML forms:
// - live updates from /events (server-sent events): a sent task's status,
//   the sent list's statuses, new tasks in the received list;
// - the live character count of "Details";
// - filtering the "To" list as you type;
// - focus on the error summary, and no second task from a double click.
//
// Nothing here builds markup from data: live parts are swapped in from this
// site's own pages (rendered and escaped on the server), and words from
// events are set as text.
(function () {
  'use strict';

  document.documentElement.classList.add('app-js');

  function announce(text) {
    var announcer = document.getElementById('announcer');
    if (!announcer) {
      return;
    }
    // Emptying first makes a repeat of the same words announced again.
    announcer.textContent = '';
    window.setTimeout(function () {
      announcer.textContent = text;
    }, 100);
  }

  function focusErrorSummary() {
    var summary = document.querySelector('.nhsuk-error-summary');
    if (summary) {
      summary.focus();
    }
  }

  function thousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  function characterCount() {
    var textarea = document.querySelector('textarea[data-maxlength]');
    if (!textarea) {
      return;
    }
    var max = parseInt(textarea.getAttribute('data-maxlength'), 10);
    var message = document.getElementById(textarea.id + '-count');
    var announcer = document.getElementById(textarea.id + '-count-announcer');
    var pause = null;

    function update() {
      // Characters as the server counts them (Unicode scalar values).
      var count = Array.from(textarea.value).length;
      var over = count > max;
      var left = Math.abs(max - count);
      var words = 'You have ' + thousands(left) + ' character' + (left === 1 ? '' : 's') +
        (over ? ' too many' : ' remaining');
      message.textContent = words;
      message.classList.toggle('nhsuk-error-message', over);
      message.classList.toggle('nhsuk-hint', !over);
      textarea.classList.toggle('nhsuk-textarea--error', over);
      // Screen readers hear the count once typing pauses, not at every key.
      window.clearTimeout(pause);
      pause = window.setTimeout(function () {
        if (announcer) {
          announcer.textContent = words;
        }
      }, 1000);
    }

    textarea.addEventListener('input', update);
    update();
  }

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) {
      el.className = className;
    }
    if (text) {
      el.textContent = text;
    }
    return el;
  }

  function recipientChooser() {
    var select = document.getElementById('to');
    var filter = document.getElementById('to-filter');
    var route = document.getElementById('to-route');
    var status = document.getElementById('to-filter-status');
    if (!select || !filter) {
      return;
    }
    var options = Array.prototype.slice.call(select.options);
    var placeholder = options.filter(function (o) { return o.value === ''; })[0];
    var organisations = options.filter(function (o) { return o.value !== ''; });

    function showRoute() {
      if (!route) {
        return;
      }
      route.textContent = '';
      var chosen = select.options[select.selectedIndex];
      if (!chosen || !chosen.value) {
        return;
      }
      var name = chosen.getAttribute('data-name');
      if (chosen.getAttribute('data-electronic') === 'true') {
        route.appendChild(element('p', 'nhsuk-body-s app-route__ok',
          name + ': ' + chosen.getAttribute('data-care-setting') + ', receives tasks electronically.'));
        return;
      }
      var card = element('div', 'nhsuk-card nhsuk-card--warning app-route__none');
      var content = element('div', 'nhsuk-card__content');
      var heading = element('h2', 'nhsuk-card__heading nhsuk-heading-s');
      var label = element('span', null);
      label.setAttribute('role', 'text');
      label.appendChild(element('span', 'nhsuk-u-visually-hidden', 'Important: '));
      label.appendChild(document.createTextNode('No electronic route'));
      heading.appendChild(label);
      var text = element('p', null, name + ' cannot receive tasks electronically. Telephone ');
      text.appendChild(element('strong', 'app-nowrap', chosen.getAttribute('data-telephone')));
      text.appendChild(document.createTextNode(' instead.'));
      content.appendChild(heading);
      content.appendChild(text);
      card.appendChild(content);
      route.appendChild(card);
    }

    function applyFilter() {
      var query = filter.value.trim().toLowerCase();
      var chosen = select.value;
      var matches = organisations.filter(function (o) {
        return !query || (o.getAttribute('data-search') || '').indexOf(query) !== -1;
      });
      select.textContent = '';
      if (placeholder && !chosen) {
        select.appendChild(placeholder);
      }
      // The chosen organisation stays in the list: filtering never changes
      // where the task goes, only choosing does.
      organisations.forEach(function (o) {
        if (o.value === chosen && matches.indexOf(o) === -1) {
          select.appendChild(o);
        }
      });
      matches.forEach(function (o) { select.appendChild(o); });
      select.value = chosen;
      if (status) {
        if (!query) {
          status.textContent = '';
        } else if (matches.length === 0) {
          status.textContent = 'No organisation matches "' + filter.value.trim() + '".';
        } else {
          status.textContent = matches.length + (matches.length === 1 ? ' organisation matches' : ' organisations match') +
            '. Choose it in the "To" list.';
        }
      }
    }

    filter.addEventListener('input', applyFilter);
    filter.addEventListener('keydown', function (event) {
      if (event.key === 'Enter') {
        // Enter filters here and moves to the list, rather than searching on the server.
        event.preventDefault();
        applyFilter();
        select.focus();
      }
    });
    select.addEventListener('change', showRoute);
  }

  function preventDoubleSend() {
    var form = document.getElementById('send-form');
    if (!form) {
      return;
    }
    var sent = false;
    form.addEventListener('submit', function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.value !== 'send') {
        return;
      }
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
    });
  }

  function liveUpdates() {
    var mode = document.body.getAttribute('data-live');
    if (!mode || !window.EventSource || !window.fetch || !window.DOMParser) {
      return;
    }
    var waiting = null;
    // Settled statuses to announce once the list shows their rows.
    var settled = [];

    function rowIds() {
      return Array.prototype.map.call(document.querySelectorAll('tr[data-task-id]'), function (row) {
        return row.getAttribute('data-task-id');
      });
    }

    // Fetches this page again and swaps in its live parts.
    function refresh() {
      if (waiting) {
        return;
      }
      waiting = window.setTimeout(function () {
        waiting = null;
        window.fetch(window.location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
          .then(function (response) {
            if (!response.ok) {
              throw new Error('HTTP ' + response.status);
            }
            return response.text();
          })
          .then(function (html) {
            var before = rowIds();
            var fresh = new DOMParser().parseFromString(html, 'text/html');
            document.querySelectorAll('[data-live-region]').forEach(function (region) {
              var replacement = fresh.getElementById(region.id);
              if (replacement && replacement.innerHTML !== region.innerHTML) {
                region.innerHTML = replacement.innerHTML;
              }
            });
            settled.splice(0).forEach(function (data) {
              var to = recipientOf(data.id);
              announce((to ? 'Task to ' + to : 'A task') + ': ' + data.label + '.');
            });
            if (before.length || mode === 'received-list') {
              document.querySelectorAll('tr[data-task-id]').forEach(function (row) {
                if (before.indexOf(row.getAttribute('data-task-id')) === -1) {
                  row.classList.add('app-new-row');
                }
              });
            }
          })
          .catch(function () {
            // The next event tries again; the page still shows the last state.
          });
      }, 150);
    }

    function recipientOf(id) {
      var row = document.querySelector('tr[data-task-id="' + id.replace(/[^A-Za-z0-9-]/g, '') + '"]');
      return row && row.cells[1] ? row.cells[1].lastChild.textContent : null;
    }

    var source = new window.EventSource('/events');
    // After a (re)connection, catch up on whatever happened in between.
    source.addEventListener('open', refresh);
    source.addEventListener('resync', refresh);
    source.addEventListener('status', function (event) {
      var data = JSON.parse(event.data);
      if (mode === 'sent-detail') {
        var status = document.getElementById('task-status');
        if (!status || status.getAttribute('data-task-id') !== data.id) {
          return;
        }
        var progress = document.getElementById('task-progress');
        if (progress && !data.settled && data.detail) {
          progress.textContent = data.detail + '.';
          progress.textContent = progress.textContent.replace(/\.\.$/, '.');
        }
        refresh();
      } else if (mode === 'sent-list') {
        if (data.settled) {
          settled.push(data);
        }
        refresh();
      }
    });
    source.addEventListener('received', function () {
      if (mode === 'received-list') {
        announce('A new task has arrived.');
        refresh();
      }
    });
    source.addEventListener('changed', function (event) {
      var data = JSON.parse(event.data);
      if (mode === 'received-list') {
        refresh();
      } else if (mode === 'received-detail') {
        var status = document.getElementById('task-status');
        if (status && status.getAttribute('data-task-id') === data.id) {
          announce('This task has changed.');
          refresh();
        }
      }
    });
  }

  focusErrorSummary();
  characterCount();
  recipientChooser();
  preventDoubleSend();
  liveUpdates();
})();
