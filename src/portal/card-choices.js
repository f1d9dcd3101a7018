import { el, setChildren } from './dom.js';

/**
 * The user's cards, which an endpoint may be limited to (`cardIds`), and its rate limit
 * (`maxPerSecond`): the checkboxes of the create and settings forms, and how the endpoint's
 * summary says both. The cards are the API's own list (GET /api/cards), read when the portal opens.
 */

let cards = [];

export function setCards(list) {
  cards = list;
}

/**
 * Checkboxes named `cardIds`, one per card, those in `checked` ticked. With no cards, a sentence
 * says the endpoint gets every card's events, which is what none ticked means.
 */
export function renderCardChoices(container, idPrefix, checked) {
  if (cards.length === 0) {
    setChildren(
      container,
      el('p', { class: 'hint' }, 'You have no cards yet: the endpoint gets the events of your profile and of every card you add.'),
    );
    return;
  }
  setChildren(
    container,
    ...cards.map((card) => {
      const id = `${idPrefix}-${card.id}`;
      return el(
        'div',
        { class: 'event-choice' },
        el('input', { type: 'checkbox', id, name: 'cardIds', value: card.id, checked: checked.includes(card.id) }),
        el('label', { for: id }, card.title, card.isPublic ? null : el('span', { class: 'event-summary' }, ' (private)')),
      );
    }),
  );
}

/** What `cardIds` means, in words: the titles of the cards listed (an id the list no longer knows as itself). */
export function cardsText(cardIds) {
  if (cardIds.length === 0) return 'Every card and your profile';
  const titles = cardIds.map((id) => cards.find((card) => card.id === id)?.title ?? id);
  return `Only ${titles.join(', ')}`;
}

export function rateText(maxPerSecond) {
  return maxPerSecond === null ? 'None' : `At most ${maxPerSecond} ${maxPerSecond === 1 ? 'request' : 'requests'} a second`;
}
